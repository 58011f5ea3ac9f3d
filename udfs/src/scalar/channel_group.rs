//! `channel_group`: the GA4 default channel group of a touch.
//!
//! # Contract
//!
//! ```sql
//! channel_group(source, medium [, campaign [, referrer]]) -> text
//! ```
//!
//! GA4's default channel group rules, first match wins, compared case-insensitively after
//! trimming (let PAID be `medium ~ '^(.*cp.*|ppc|retargeting|paid.*)$'` and SHOP_CAMPAIGN be
//! `campaign ~ '^(.*(([^a-df-z]|^)shop|shopping).*)$'`):
//!
//! 1. Direct: source `(direct)` and medium `(none)` or `(not set)`
//! 2. Cross-network: campaign contains `cross-network`
//! 3. Paid Shopping: (shopping source or SHOP_CAMPAIGN) and PAID
//! 4. Paid Search: search source and PAID
//! 5. Paid Social: social source and PAID
//! 6. Paid Video: video source and PAID
//! 7. Display: medium `display`, `banner`, `expandable`, `interstitial` or `cpm`
//! 8. Paid Other: PAID
//! 9. Organic Shopping: shopping source or SHOP_CAMPAIGN
//! 10. Organic Social: social source, or medium `social`, `social-network`, `social-media`, `sm`,
//!     `social network`, `social media`
//! 11. Organic Video: video source, or medium containing `video`
//! 12. Organic Search: search source, or medium `organic`
//! 13. Referral: medium `referral`, `app` or `link`
//! 14. Email: source or medium `email`, `e-mail`, `e_mail`, `e mail`
//! 15. Affiliates: medium `affiliate` or `affiliates`
//! 16. Audio: medium `audio`
//! 17. SMS: source or medium `sms`
//! 18. Mobile Push Notifications: medium ending in `push` or containing `mobile` or
//!     `notification`, or source `firebase`
//! 19. otherwise Unassigned.
//!
//! Source categories (search, social, shopping, video) are data, not code:
//! `sql/channel_groups/source_categories.csv`, read when the crate is built. A source matches
//! as written or without a leading `www.`.
//!
//! NULLs: a NULL or empty source and medium mean "no campaign data". With a `referrer`
//! argument, the referrer's host then stands for the source, with medium `organic` for a search
//! engine, `social` for a social network and `referral` otherwise (Snowplow's
//! `use_refr_if_mkt_null`); with no referrer either, the touch is `(direct)` / `(none)`:
//! Direct. So the function never returns NULL, and it says which channel a touch belongs to,
//! not whether an event is a touch: the journey model decides that (an event without any
//! marketing context of its own is no touch, though its channel group would be Direct).
//!
//! Differences from GA4: Google's source list is longer (ours is versioned in the CSV above);
//! Cross-network cannot see Google Ads network types, only the campaign name; both spellings
//! `affiliate`/`affiliates` count. Unlike one Snowplow variant, `interstitial` is spelled right.

use crate::docs::{FunctionDoc, Kind};
use crate::error::ArgumentError;
use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

pub const NAME: &str = "channel_group";

/// This function's reference ([`crate::docs`]).
pub const DOC: FunctionDoc = FunctionDoc {
    name: NAME,
    kind: Kind::Scalar,
    usage: "channel_group(source, medium [, campaign [, referrer]])",
    result: "text",
    positional: "source text, medium text, campaign text DEFAULT NULL, referrer text DEFAULT NULL",
    options: &[],
    summary: "The GA4 default channel group of a source, medium, campaign and referrer.",
    description: "the GA4 default channel group (Direct, Paid Search, Organic Social, Email, ... Unassigned), its 18 rules in GA4's order, case-insensitive; source categories are data in `sql/channel_groups/source_categories.csv`; with no campaign data the referrer decides, then Direct; never NULL (so it is a touch's channel, not a test of whether an event is a touch: see the journey model's touch rule)",
    contract: "`udfs/src/scalar/channel_group.rs`",
};

/// The source categories shipped in `sql/channel_groups/source_categories.csv`.
const SOURCE_CATEGORIES_CSV: &str = include_str!("../../../sql/channel_groups/source_categories.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCategory {
    Search,
    Social,
    Shopping,
    Video,
}

static SOURCE_CATEGORIES: LazyLock<HashMap<String, SourceCategory>> = LazyLock::new(|| {
    parse_source_categories(SOURCE_CATEGORIES_CSV).expect("sql/channel_groups/source_categories.csv is valid")
});

/// Parses the source-category CSV: `source,category` rows after a header; `#` starts a comment.
pub fn parse_source_categories(csv: &str) -> std::result::Result<HashMap<String, SourceCategory>, String> {
    let mut out = HashMap::new();
    let mut lines = csv.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    if lines.next() != Some("source,category") {
        return Err("the header must be `source,category`".into());
    }
    for line in lines {
        let (source, category) = line.rsplit_once(',').ok_or_else(|| format!("bad line: {line}"))?;
        let category = match category {
            "SEARCH" => SourceCategory::Search,
            "SOCIAL" => SourceCategory::Social,
            "SHOPPING" => SourceCategory::Shopping,
            "VIDEO" => SourceCategory::Video,
            other => return Err(format!("unknown category {other} for {source}")),
        };
        if out.insert(source.trim().to_ascii_lowercase(), category).is_some() {
            return Err(format!("{source} is listed twice"));
        }
    }
    Ok(out)
}

fn category(source: &str) -> Option<SourceCategory> {
    let map = &*SOURCE_CATEGORIES;
    map.get(source).or_else(|| source.strip_prefix("www.").and_then(|s| map.get(s))).copied()
}

/// The host of a URL: `https://www.google.com/search?q=x` -> `www.google.com`.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let end = rest.find(['/', '?', '#', ':']).unwrap_or(rest.len());
    &rest[..end]
}

fn is_paid(medium: &str) -> bool {
    medium.contains("cp") || medium == "ppc" || medium == "retargeting" || medium.starts_with("paid")
}

/// `^(.*(([^a-df-z]|^)shop|shopping).*)$`: "shopping" anywhere, or "shop" at the start or after
/// a character that is not a lower-case letter other than `e`.
fn is_shop_campaign(campaign: &str) -> bool {
    if campaign.contains("shopping") {
        return true;
    }
    campaign.match_indices("shop").any(|(i, _)| match campaign[..i].chars().next_back() {
        None => true,
        Some(c) => !(c.is_ascii_lowercase() && c != 'e'),
    })
}

/// The kernel: the channel group of one touch.
pub fn channel_group(
    source: Option<&str>,
    medium: Option<&str>,
    campaign: Option<&str>,
    referrer: Option<&str>,
) -> &'static str {
    let clean = |s: Option<&str>| s.map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
    let (mut source, mut medium) = (clean(source), clean(medium));
    let campaign = clean(campaign).unwrap_or_default();
    if source.is_none() && medium.is_none() {
        let (s, m) = match clean(referrer) {
            Some(r) => {
                let h = host(&r).to_string();
                let m = match category(&h) {
                    Some(SourceCategory::Search) => "organic",
                    Some(SourceCategory::Social) => "social",
                    _ => "referral",
                };
                (h, m.to_string())
            }
            None => ("(direct)".to_string(), "(none)".to_string()),
        };
        source = Some(s);
        medium = Some(m);
    }
    let source = source.unwrap_or_default();
    let medium = medium.unwrap_or_default();
    let cat = category(&source);
    let paid = is_paid(&medium);
    let shop = cat == Some(SourceCategory::Shopping) || is_shop_campaign(&campaign);
    let is = |c| cat == Some(c);
    match () {
        _ if source == "(direct)" && (medium == "(none)" || medium == "(not set)") => "Direct",
        _ if campaign.contains("cross-network") => "Cross-network",
        _ if shop && paid => "Paid Shopping",
        _ if is(SourceCategory::Search) && paid => "Paid Search",
        _ if is(SourceCategory::Social) && paid => "Paid Social",
        _ if is(SourceCategory::Video) && paid => "Paid Video",
        _ if matches!(medium.as_str(), "display" | "banner" | "expandable" | "interstitial" | "cpm") => "Display",
        _ if paid => "Paid Other",
        _ if shop => "Organic Shopping",
        _ if is(SourceCategory::Social)
            || matches!(
                medium.as_str(),
                "social" | "social-network" | "social-media" | "sm" | "social network" | "social media"
            ) =>
        {
            "Organic Social"
        }
        _ if is(SourceCategory::Video) || medium.contains("video") => "Organic Video",
        _ if is(SourceCategory::Search) || medium == "organic" => "Organic Search",
        _ if matches!(medium.as_str(), "referral" | "app" | "link") => "Referral",
        _ if [source.as_str(), medium.as_str()]
            .iter()
            .any(|v| matches!(*v, "email" | "e-mail" | "e_mail" | "e mail")) =>
        {
            "Email"
        }
        _ if medium == "affiliate" || medium == "affiliates" => "Affiliates",
        _ if medium == "audio" => "Audio",
        _ if source == "sms" || medium == "sms" => "SMS",
        _ if medium.ends_with("push")
            || medium.contains("mobile")
            || medium.contains("notification")
            || source == "firebase" =>
        {
            "Mobile Push Notifications"
        }
        _ => "Unassigned",
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ChannelGroup {
    signature: Signature,
}

impl Default for ChannelGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl ChannelGroup {
    pub fn new() -> Self {
        ChannelGroup { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for ChannelGroup {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const ARGS: [&str; 4] = ["source", "medium", "campaign", "referrer"];
        const SYNTAX: &str = "channel_group(source, medium [, campaign [, referrer]])";
        if arg_types.len() < 2 {
            let missing = ARGS[arg_types.len()];
            return Err(ArgumentError::new(NAME, missing, format!("is required: {SYNTAX}")).into_datafusion());
        }
        if arg_types.len() > ARGS.len() {
            let msg = format!("is the last argument, got {} arguments: {SYNTAX}", arg_types.len());
            return Err(ArgumentError::new(NAME, "referrer", msg).into_datafusion());
        }
        arg_types
            .iter()
            .zip(ARGS)
            .map(|(t, name)| match t {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => Ok(DataType::Utf8),
                DataType::Dictionary(_, v) if v.is_string() => Ok(DataType::Utf8),
                other => Err(ArgumentError::new(NAME, name, format!("must be text, not {other}")).into_datafusion()),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows).and_then(|a| Ok(cast(&a, &DataType::Utf8)?)))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let strings = arrays.iter().map(|a| as_string_array(a)).collect::<Result<Vec<_>>>()?;
        let get =
            |i: usize, row: usize| strings.get(i).and_then(|a| if a.is_null(row) { None } else { Some(a.value(row)) });
        let out: StringArray =
            (0..rows).map(|r| Some(channel_group(get(0, r), get(1, r), get(2, r), get(3, r)))).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(source: &str, medium: &str, campaign: &str) -> &'static str {
        fn opt(s: &str) -> Option<&str> {
            if s.is_empty() { None } else { Some(s) }
        }
        channel_group(opt(source), opt(medium), opt(campaign), None)
    }

    #[test]
    fn every_rule_in_order() {
        let cases = [
            ("(direct)", "(none)", "", "Direct"),
            ("(direct)", "(not set)", "", "Direct"),
            ("google", "cpc", "pmax_cross-network_q1", "Cross-network"),
            ("amazon", "cpc", "", "Paid Shopping"),
            ("newsletter", "paid", "spring_shop", "Paid Shopping"),
            ("Google", " CPC ", "", "Paid Search"),
            ("linkedin", "paid_social", "", "Paid Social"),
            ("youtube", "cpv", "", "Paid Video"),
            ("doubleclick", "display", "", "Display"),
            ("google_display", "cpm", "", "Display"),
            ("somewhere", "interstitial", "", "Display"),
            ("partner", "ppc", "", "Paid Other"),
            ("etsy", "referral", "", "Organic Shopping"),
            ("blog", "referral", "shopping_guide", "Organic Shopping"),
            ("reddit", "referral", "", "Organic Social"),
            ("forum", "social-media", "", "Organic Social"),
            ("vimeo", "referral", "", "Organic Video"),
            ("site", "video_embed", "", "Organic Video"),
            ("duckduckgo", "referral", "", "Organic Search"),
            ("anything", "organic", "", "Organic Search"),
            ("g2.com", "referral", "", "Referral"),
            ("hubspot", "email", "", "Email"),
            ("e-mail", "newsletter", "", "Email"),
            ("partner", "affiliate", "", "Affiliates"),
            ("podcast", "audio", "", "Audio"),
            ("sms", "text", "", "SMS"),
            ("app", "web_push", "", "Mobile Push Notifications"),
            ("firebase", "x", "", "Mobile Push Notifications"),
            ("somewhere", "something", "", "Unassigned"),
        ];
        for (s, m, c, want) in cases {
            assert_eq!(cg(s, m, c), want, "{s} / {m} / {c}");
        }
    }

    #[test]
    fn shop_campaign_pattern() {
        for yes in ["shop", "summer_shop", "shopping", "eshop_sale", "2024 shop"] {
            assert!(is_shop_campaign(yes), "{yes}");
        }
        for no in ["workshop", "bishop", ""] {
            assert!(!is_shop_campaign(no), "{no}");
        }
    }

    #[test]
    fn missing_campaign_data_falls_back_to_the_referrer_then_direct() {
        assert_eq!(channel_group(None, None, None, Some("https://www.google.com/search?q=x")), "Organic Search");
        assert_eq!(channel_group(None, Some(""), None, Some("https://l.facebook.com/")), "Organic Social");
        assert_eq!(channel_group(None, None, None, Some("https://partner-blog.com/post")), "Referral");
        assert_eq!(channel_group(None, None, None, None), "Direct");
        // Campaign data, when present, wins over the referrer.
        assert_eq!(channel_group(Some("hubspot"), Some("email"), None, Some("https://www.google.com/")), "Email");
    }

    #[test]
    fn the_shipped_source_list_parses_and_rejects_bad_rows() {
        assert!(SOURCE_CATEGORIES.len() > 150);
        assert_eq!(category("www.bing.com"), Some(SourceCategory::Search));
        assert!(parse_source_categories("source,category\na,NOPE").is_err());
        assert!(parse_source_categories("source,category\na,SEARCH\na,SOCIAL").is_err());
        assert!(parse_source_categories("nope").is_err());
    }
}
