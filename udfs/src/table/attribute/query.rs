//! The attribution report's call: its models and options, checked and given their defaults.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Rule(Model),
    /// Simplified (Zhao): equal split over the journey's distinct values.
    Shapley,
    ShapleyProbability,
    Markov,
}

#[derive(Debug, Clone)]
pub(super) struct NamedModel {
    pub(super) name: String,
    pub(super) kind: Kind,
}

/// A validated call.
#[derive(Debug, Clone)]
pub struct AttributeQuery {
    pub(super) source: String,
    pub(super) person: String,
    pub(super) time: String,
    pub(super) by: String,
    pub(super) by_name: String,
    pub(super) touch: String,
    pub(super) conversion: String,
    pub(super) value: String,
    pub(super) lookback: i64,
    pub(super) lookback_steps: usize,
    pub(super) reset: bool,
    pub(super) transforms: Vec<TransformSpec>,
    pub(super) models: Vec<NamedModel>,
    pub(super) order: usize,
    /// Present when a model needs it.
    pub(super) direct: Option<String>,
    pub(super) milestone: Option<String>,
    /// Ad spend to join (a table or query).
    pub(super) spend: Option<String>,
    /// The call, as given.
    pub(super) call: Options,
}

pub(super) fn bad(arg: &str, msg: impl Into<String>) -> datafusion::error::DataFusionError {
    ArgumentError::new(NAME, arg, msg).into_datafusion()
}

pub(super) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl AttributeQuery {
    pub(super) fn parse(mut o: Options, default_source: &str) -> Result<AttributeQuery> {
        let call = o.clone();
        let source = o.string("source")?.unwrap_or_else(|| default_source.to_string());
        let person = o.person()?;
        let time = o.string("time")?.unwrap_or_else(|| "event_time".into());
        let event = o.string("event")?.unwrap_or_else(|| "event_name".into());
        let by_given = o.string("by")?.unwrap_or_else(|| "channel".into());
        let by_given = by_given.trim().to_string();
        let plain = !by_given.is_empty() && by_given.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let by_name = if plain { by_given.to_ascii_lowercase() } else { "value".to_string() };
        let by = if by_given.eq_ignore_ascii_case("stage") { "stage_reached".to_string() } else { by_given.clone() };
        let touch = o.string("touch")?.unwrap_or_else(|| "is_touch".into());
        let conversion = match o.strings("conversion")? {
            None => "is_conversion".to_string(),
            Some(list) if list.is_empty() => return Err(bad("conversion", "must name at least one event")),
            Some(list) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|c| {
                        let c = c.trim();
                        if is_predicate(c) { format!("({c})") } else { format!("({event}) = {}", quote(c)) }
                    })
                    .collect();
                parts.join(" OR ")
            }
        };
        let value = o.string("value")?.unwrap_or_else(|| "revenue".into());
        let lookback = o.duration_micros("lookback")?.unwrap_or(DEFAULT_LOOKBACK_MICROS);
        let lookback_steps = o.int("lookback_steps", 0, i64::from(u32::MAX))?.unwrap_or(0) as usize;
        let reset = o.bool("since_previous_conversion")?.unwrap_or(true);
        let transforms = o
            .strings("transforms")?
            .unwrap_or_default()
            .iter()
            .map(|t| TransformSpec::parse(t).map_err(|e| bad("transforms", e)))
            .collect::<Result<Vec<_>>>()?;
        let half_life = o.duration_micros("half_life")?;
        if half_life == Some(0) {
            return Err(bad("half_life", "must be positive"));
        }
        let weights = o.floats("weights")?;
        let order = o.int("order", 1, MAX_ORDER)?.map(|k| k as usize);
        let direct = o.string("direct")?;
        let milestone = o.string("milestone")?;
        let spend = o.string("spend")?;
        if spend.as_ref().is_some_and(|s| s.trim().is_empty()) {
            return Err(bad("spend", "must name a table or be a query"));
        }
        // Models, positional (text values or arrays of them) or `model => ...`.
        let mut names: Vec<String> = vec![];
        if let Some(named) = o.strings("model")? {
            names.extend(named.iter().map(|m| m.trim().to_ascii_lowercase()));
        }
        for (i, v) in o.positional().iter().enumerate() {
            let arg = format!("{}", i + 1);
            match v {
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
                    names.push(s.trim().to_ascii_lowercase())
                }
                ScalarValue::List(a) => {
                    let list = a.value(0);
                    for k in 0..list.len() {
                        match ScalarValue::try_from_array(&list, k)? {
                            ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                                names.push(s.trim().to_ascii_lowercase())
                            }
                            other => return Err(bad(&arg, format!("must hold model names, got {other}"))),
                        }
                    }
                }
                other => return Err(bad(&arg, format!("must be a model name ({MODELS}), got {other}"))),
            }
        }
        if names.is_empty() {
            return Err(bad("1", format!("a model is needed: attribute('linear') ({MODELS})")));
        }
        let mut expanded: Vec<String> = vec![];
        for n in names {
            if n == "all" {
                expanded.extend(ALL.iter().map(|s| s.to_string()));
            } else {
                expanded.push(n);
            }
        }
        let mut models: Vec<NamedModel> = vec![];
        for name in expanded {
            if models.iter().any(|m| m.name == name) {
                continue;
            }
            let kind = match name.as_str() {
                "markov" => Kind::Markov,
                "shapley" => Kind::Shapley,
                "shapley_probability" => Kind::ShapleyProbability,
                "custom" => match &weights {
                    Some(w) if w.len() == 3 && w.iter().all(|x| x.is_finite() && *x >= 0.0) => {
                        if w.iter().all(|&x| x == 0.0) {
                            return Err(bad("weights", "must not all be 0"));
                        }
                        Kind::Rule(Model::Ends(w[0], w[1], w[2]))
                    }
                    _ => {
                        return Err(bad(
                            "weights",
                            "custom needs three non-negative weights: weights => ARRAY[0.5, 0, 0.5]",
                        ));
                    }
                },
                "time_decay" => Kind::Rule(Model::TimeDecay(half_life.unwrap_or(DEFAULT_HALF_LIFE_MICROS))),
                other => match Model::parse(other) {
                    Some(m) => Kind::Rule(m),
                    None => return Err(bad("1", format!("unknown model '{other}' (models: {MODELS})"))),
                },
            };
            models.push(NamedModel { name, kind });
        }
        let uses = |f: &dyn Fn(Kind) -> bool| models.iter().any(|m| f(m.kind));
        if weights.is_some() && !uses(&|k| matches!(k, Kind::Rule(Model::Ends(..)))) {
            return Err(bad("weights", "is used only by the custom model"));
        }
        if half_life.is_some() && !uses(&|k| matches!(k, Kind::Rule(Model::TimeDecay(_)))) {
            return Err(bad("half_life", "is used only by time_decay"));
        }
        if order.is_some() && !uses(&|k| k == Kind::Markov) {
            return Err(bad("order", "is used only by markov"));
        }
        let needs_direct = uses(&|k| k == Kind::Rule(Model::LastNonDirect));
        let needs_milestones = uses(&|k| matches!(k, Kind::Rule(Model::WShaped | Model::FullPath)));
        o.finish(&DOC.option_names())?;
        for (arg, v) in [("source", &source), ("person", &person), ("time", &time), ("by", &by), ("value", &value)] {
            if v.trim().is_empty() {
                return Err(bad(arg, "must not be empty"));
            }
        }
        Ok(AttributeQuery {
            source,
            person,
            time,
            by,
            by_name,
            touch,
            conversion,
            value,
            lookback,
            lookback_steps,
            reset,
            transforms,
            models,
            order: order.unwrap_or(1),
            direct: needs_direct.then(|| direct.unwrap_or_else(|| "channel = 'Direct'".into())),
            milestone: needs_milestones.then(|| milestone.unwrap_or_else(|| "milestone".into())),
            spend,
            call,
        })
    }

    pub(super) fn needs_paths(&self) -> bool {
        self.models.iter().any(|m| matches!(m.kind, Kind::Markov | Kind::ShapleyProbability))
    }
}
