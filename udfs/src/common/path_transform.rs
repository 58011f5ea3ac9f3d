//! Path transforms: how a journey's touches are cleaned before a model credits them.
//!
//! Plain Rust over [`PathTouch`]es (a label id and the touch it stands for). The transforms are
//! those of Snowplow's attribution package and Google's fractribution
//! (research/journey-functions.md section 2.11), applied left to right, after the lookback
//! (time, then steps: the journey's last `n` touches). On `[D, A, B, B, C, D, C, C]`:
//!
//! | transform | result |
//! |---|---|
//! | `unique` | every touch, unchanged: `[D, A, B, B, C, D, C, C]` |
//! | `exposure` | consecutive repeats collapsed into the first of the run: `[D, A, B, C, D, C]` |
//! | `first` | first occurrences only: `[D, A, B, C]` |
//! | `frequency` | first occurrences, counting the occurrences: `[D(2), A(1), B(2), C(3)]` |
//! | `remove_if_not_all(X, ...)` | every X dropped, unless that empties the path |
//! | `remove_if_last_and_not_all(X, ...)` | the trailing run of X dropped, unless that empties the path |
//!
//! A touch merged into another (`exposure`, `first`, `frequency`) hands its milestone roles to
//! the touch kept for it, so a lead created on a repeated visit is not lost; a removed touch's
//! roles are dropped (the milestone models then fall back as documented in `attribution`). The
//! `frequency` count is part of a touch's state for `markov` (`A(2)` and `A(1)` are different
//! states, as in fractribution); credits are reported under the label without the count.

use crate::common::attribution::Touch;

/// A touch of a path: its label (channel, campaign, ...) and the touch itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathTouch {
    pub label: u32,
    /// Occurrences folded into this touch by `frequency`; 0 otherwise.
    pub count: u32,
    pub touch: Touch,
}

/// One transform, with its labels already resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    Unique,
    Exposure,
    First,
    Frequency,
    RemoveIfNotAll(Vec<u32>),
    RemoveIfLastAndNotAll(Vec<u32>),
}

/// A transform as written: `name` or `name(label, label, ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformSpec {
    pub name: &'static str,
    pub labels: Vec<String>,
}

pub const NAMES: [&str; 6] =
    ["unique", "exposure", "first", "frequency", "remove_if_not_all", "remove_if_last_and_not_all"];

impl TransformSpec {
    /// Parses `exposure` or `remove_if_last_and_not_all(Direct, Email)`; labels are trimmed
    /// and may be single-quoted.
    pub fn parse(text: &str) -> Result<TransformSpec, String> {
        let text = text.trim();
        let (name, args) = match text.find('(') {
            None => (text, None),
            Some(i) => {
                let Some(inner) = text[i + 1..].strip_suffix(')') else {
                    return Err(format!("'{text}' has no closing parenthesis"));
                };
                (text[..i].trim(), Some(inner))
            }
        };
        let lower = name.to_ascii_lowercase();
        let Some(&name) = NAMES.iter().find(|n| **n == lower) else {
            return Err(format!("unknown transform '{name}' (transforms: {})", NAMES.join(", ")));
        };
        let takes_labels = name.starts_with("remove_");
        let labels: Vec<String> = match args {
            None => vec![],
            Some(a) => a
                .split(',')
                .map(|l| {
                    let l = l.trim();
                    l.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')).unwrap_or(l).to_string()
                })
                .filter(|l| !l.is_empty())
                .collect(),
        };
        if takes_labels && labels.is_empty() {
            return Err(format!("'{name}' needs the labels to remove: {name}(Direct)"));
        }
        if !takes_labels && args.is_some() {
            return Err(format!("'{name}' takes no labels"));
        }
        Ok(TransformSpec { name, labels })
    }

    /// The transform with its labels resolved by `id`.
    pub fn resolve(&self, mut id: impl FnMut(&str) -> u32) -> Transform {
        let mut ids = || self.labels.iter().map(|l| id(l)).collect::<Vec<u32>>();
        match self.name {
            "unique" => Transform::Unique,
            "exposure" => Transform::Exposure,
            "first" => Transform::First,
            "frequency" => Transform::Frequency,
            "remove_if_not_all" => Transform::RemoveIfNotAll(ids()),
            _ => Transform::RemoveIfLastAndNotAll(ids()),
        }
    }
}

/// Applies `transform` to `path` in place.
pub fn apply(transform: &Transform, path: &mut Vec<PathTouch>) {
    match transform {
        Transform::Unique => {}
        Transform::Exposure => {
            let mut out: Vec<PathTouch> = Vec::with_capacity(path.len());
            for p in path.drain(..) {
                match out.last_mut() {
                    Some(last) if last.label == p.label => last.touch.milestones |= p.touch.milestones,
                    _ => out.push(p),
                }
            }
            *path = out;
        }
        Transform::First | Transform::Frequency => {
            let count = matches!(transform, Transform::Frequency);
            let mut out: Vec<PathTouch> = Vec::with_capacity(path.len());
            for p in path.drain(..) {
                match out.iter_mut().find(|o| o.label == p.label) {
                    Some(o) => {
                        o.touch.milestones |= p.touch.milestones;
                        if count {
                            o.count += 1;
                        }
                    }
                    None => out.push(PathTouch { count: u32::from(count), ..p }),
                }
            }
            *path = out;
        }
        Transform::RemoveIfNotAll(labels) => {
            if path.iter().any(|p| !labels.contains(&p.label)) {
                path.retain(|p| !labels.contains(&p.label));
            }
        }
        Transform::RemoveIfLastAndNotAll(labels) => {
            let keep = path.iter().rposition(|p| !labels.contains(&p.label));
            if let Some(k) = keep {
                path.truncate(k + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: u32 = 3;
    const A: u32 = 0;
    const B: u32 = 1;
    const C: u32 = 2;

    fn path(labels: &[u32]) -> Vec<PathTouch> {
        labels
            .iter()
            .enumerate()
            .map(|(i, &label)| PathTouch {
                label,
                count: 0,
                touch: Touch { t: i as i64, direct: false, milestones: 0 },
            })
            .collect()
    }

    fn run(spec: &str, labels: &[u32]) -> Vec<(u32, u32)> {
        let names = ["A", "B", "C", "D"];
        let t = TransformSpec::parse(spec)
            .expect("spec")
            .resolve(|l| names.iter().position(|n| *n == l).expect("label") as u32);
        let mut p = path(labels);
        apply(&t, &mut p);
        p.iter().map(|x| (x.label, x.count)).collect()
    }

    fn plain(labels: &[u32]) -> Vec<(u32, u32)> {
        labels.iter().map(|&l| (l, 0)).collect()
    }

    #[test]
    fn the_documented_examples() {
        let p = [D, A, B, B, C, D, C, C];
        assert_eq!(run("unique", &p), plain(&p));
        assert_eq!(run("exposure", &p), plain(&[D, A, B, C, D, C]));
        assert_eq!(run("first", &p), plain(&[D, A, B, C]));
        assert_eq!(run("frequency", &p), vec![(D, 2), (A, 1), (B, 2), (C, 3)]);
        assert_eq!(run("remove_if_not_all(A)", &[A, B, A, A]), plain(&[B]));
        assert_eq!(run("remove_if_not_all(A)", &[A, A]), plain(&[A, A]));
        assert_eq!(run("remove_if_last_and_not_all(A)", &[A, B, A, A]), plain(&[A, B]));
        assert_eq!(run("remove_if_last_and_not_all(A)", &[A, A]), plain(&[A, A]));
        assert_eq!(run("remove_if_last_and_not_all('A', D)", &[B, D, A, D]), plain(&[B]));
    }

    #[test]
    fn merged_touches_hand_over_their_milestones() {
        let mut p = path(&[A, A, B, A]);
        p[1].touch.milestones = 1;
        p[3].touch.milestones = 2;
        let mut e = p.clone();
        apply(&Transform::Exposure, &mut e);
        assert_eq!(e.iter().map(|x| x.touch.milestones).collect::<Vec<_>>(), vec![1, 0, 2]);
        apply(&Transform::First, &mut p);
        assert_eq!(p.iter().map(|x| x.touch.milestones).collect::<Vec<_>>(), vec![3, 0]);
    }

    #[test]
    fn bad_specs_are_named() {
        assert!(TransformSpec::parse("sideways").expect_err("an error").contains("unknown transform"));
        assert!(TransformSpec::parse("remove_if_not_all").expect_err("an error").contains("needs the labels"));
        assert!(TransformSpec::parse("exposure(A)").expect_err("an error").contains("takes no labels"));
        assert!(TransformSpec::parse("first(").expect_err("an error").contains("parenthesis"));
    }
}
