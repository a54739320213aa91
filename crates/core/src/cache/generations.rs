//! Purge generations: counters that are part of every cache key, so bumping one invalidates the
//! matching entries in every data centre at once (the Cache API itself is per data centre).
//!
//! Stored as one JSON document at [`GENERATIONS_KEY`] in the `CONFIG` namespace:
//! `{"all": 0, "routes": {"users": 3}, "tags": {"catalog": 1}}`. Written by `scripts/config purge`,
//! read by the Worker at most every `CONFIG_RELOAD_SECONDS`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const GENERATIONS_KEY: &str = "cache/generations";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generations {
    /// Bumped by `purge --all`: every cached response.
    #[serde(default)]
    pub all: u64,
    /// Per route name.
    #[serde(default)]
    pub routes: BTreeMap<String, u64>,
    /// Per tag (the `tags` of proxy-cache instances).
    #[serde(default)]
    pub tags: BTreeMap<String, u64>,
}

impl Generations {
    pub fn parse(text: &str) -> Result<Generations, String> {
        serde_json::from_str(text).map_err(|e| format!("{GENERATIONS_KEY} is not valid: {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The generation part of the key of a response on `route` cached by an instance with `tags`.
    pub fn for_request(&self, route: &str, tags: &[String]) -> String {
        let mut out = format!(
            "{}.{}",
            self.all,
            self.routes.get(route).copied().unwrap_or(0)
        );
        for t in tags {
            let g = self.tags.get(t).copied().unwrap_or(0);
            if g > 0 {
                out.push_str(&format!(",{t}={g}"));
            }
        }
        out
    }

    /// Invalidate everything cached for `route`; returns the new generation.
    pub fn bump_route(&mut self, route: &str) -> u64 {
        bump(self.routes.entry(route.to_string()).or_insert(0))
    }

    /// Invalidate everything cached by instances tagged `tag`; returns the new generation.
    pub fn bump_tag(&mut self, tag: &str) -> u64 {
        bump(self.tags.entry(tag.to_string()).or_insert(0))
    }

    /// Invalidate every cached response; returns the new generation.
    pub fn bump_all(&mut self) -> u64 {
        bump(&mut self.all)
    }
}

fn bump(g: &mut u64) -> u64 {
    *g = g.saturating_add(1);
    *g
}
