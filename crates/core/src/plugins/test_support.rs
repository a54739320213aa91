//! Helpers shared by the plugins' native tests.

use super::PluginError;
use serde_json::Value;
use std::fmt::Debug;

/// The JSON path (relative to `config`) of the first error `parse` reports for `config`; panics
/// when `parse` accepts it.
pub(crate) fn path_of<T: Debug>(
    parse: fn(&Value) -> Result<T, PluginError>,
    config: Value,
) -> String {
    match parse(&config) {
        Err(PluginError::Config(e)) => e[0].0.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}
