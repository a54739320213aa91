//! Configuration: the document model, parsing and validation.

pub mod model;
pub use edgegate_path_error as path_error;
#[cfg(feature = "schema")]
pub mod schema;
pub mod url;
mod validate;
pub(crate) use validate::quote_name;

pub use model::*;
pub use url::ServiceUrl;
pub use validate::{parse_and_validate, ValidationError};
