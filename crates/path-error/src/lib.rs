//! Deserializing a typed configuration from a JSON value, with the path of the first error.
//!
//! [`deserialize`] reads `T` from a `&serde_json::Value` exactly as `T::deserialize(&value)` does (the same
//! visitor calls, so the same values are accepted and the same error messages produced) and, on error,
//! also tells where: the path of map keys, array indices and enum variants to the value that failed, as
//! the `serde_path_to_error` crate reports it over serde_json's deserializer.
//!
//! It replaces that crate, which wraps serde_json's deserializer, visitors and accessors in a second
//! layer: with every configuration type instantiated for both layers, that cost about 35 KB of the
//! gzipped Worker. This is one layer, a port of serde_json's `impl Deserializer for &Value` that keeps
//! a stack of borrowed path segments (nothing allocated per key; the path is copied only on error).

use serde::de::{
    self, Deserialize, DeserializeSeed, Expected, IntoDeserializer, Unexpected, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An array element.
    Seq { index: usize },
    /// A map value (or struct field), by its key.
    Map { key: String },
    /// The content of an enum variant (`{"variant": ...}`).
    Enum { variant: String },
    /// A map value whose key was not read as a string.
    Unknown,
}

impl fmt::Display for Segment {
    /// `[2]`; a key or variant as [`key_form`] shows it: `name`, `["x.y"]`, `[<hidden key, 40 characters>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Seq { index } => write!(f, "[{index}]"),
            Segment::Map { key } => write!(f, "{}", key_form(key)),
            Segment::Enum { variant } => write!(f, "{}", key_form(variant)),
            Segment::Unknown => f.write_str("?"),
        }
    }
}

/// Keys longer than this (in characters) are never shown in a path.
pub const MAX_SHOWN_KEY_CHARS: usize = 32;

/// How a map key appears in a printed path. A key is user data and may be a secret pasted in the wrong
/// place (`"Authorization: Bearer sk-..."` as a header name), and paths are printed by the CLI and logged
/// by the Worker, so only a key that looks like a name is shown:
///
/// - 1 to [`MAX_SHOWN_KEY_CHARS`] characters, each a letter, digit, `_`, `-` or `$`: as is (`a.b`);
/// - 1 to [`MAX_SHOWN_KEY_CHARS`] characters of an HTTP token (RFC 9110: letters, digits and
///   ``!#$%&'*+-.^_`|~``): quoted (`a["x.y"]`);
/// - the empty key: `a[""]`;
/// - any other key is hidden, only its length is said: `a[<hidden key, 40 characters>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm<'a> {
    Plain(&'a str),
    Quoted(&'a str),
    Hidden { chars: usize },
}

/// The form [`KeyForm`] describes for `key`.
pub fn key_form(key: &str) -> KeyForm<'_> {
    let chars = key.chars().count();
    if chars > MAX_SHOWN_KEY_CHARS {
        return KeyForm::Hidden { chars };
    }
    let bytes = key.as_bytes();
    if !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$'))
    {
        KeyForm::Plain(key)
    } else if bytes.iter().all(|b| is_tchar(*b)) {
        KeyForm::Quoted(key)
    } else {
        KeyForm::Hidden { chars }
    }
}

/// Whether [`key_form`] hides `key`.
pub fn is_hidden_key(key: &str) -> bool {
    matches!(key_form(key), KeyForm::Hidden { .. })
}

/// A key as an error message quotes it, by the rule of [`key_form`]: a key that a path shows (plainly
/// or quoted) between two `quote`s (`"x.y"` with `"\""`, `` `name` `` with `` "`" ``, `name` with
/// `""`); a hidden key as `<hidden key, 40 characters>`, in place of the key and its quotes, except
/// that backquotes (serde's way of naming a field or variant: ``unknown field `...` ``) stay around it.
/// Every message that quotes a key of the document is built with it, so a key is shown or hidden
/// alike in paths and messages.
pub fn quote_key<'a>(key: &'a str, quote: &'a str) -> QuotedKey<'a> {
    quote_as(key, quote, "key")
}

/// Other user text that an error message names only when it looks like a name, by the rule of keys
/// (a plugin `id` or `consumer` that is not a valid name, the text inside a template's `$(...)`): as
/// [`quote_key`], the placeholder naming `what` instead: `<hidden name, 40 characters>`.
pub fn quote_as<'a>(text: &'a str, quote: &'a str, what: &'a str) -> QuotedKey<'a> {
    QuotedKey {
        form: key_form(text),
        quote,
        what,
    }
}

/// A key (or other text) in an error message: see [`quote_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedKey<'a> {
    form: KeyForm<'a>,
    quote: &'a str,
    what: &'a str,
}

impl fmt::Display for QuotedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.form {
            KeyForm::Plain(key) | KeyForm::Quoted(key) => {
                write!(f, "{q}{key}{q}", q = self.quote)
            }
            KeyForm::Hidden { chars } => {
                let q = if self.quote == "`" { "`" } else { "" };
                let s = if chars == 1 { "" } else { "s" };
                write!(f, "{q}<hidden {}, {chars} character{s}>{q}", self.what)
            }
        }
    }
}

/// `error`, raised while reading the map key or enum variant `key`, with the key as [`quote_key`]
/// shows it. serde's messages about a key quote it whole (``unknown field `KEY`, expected one of …``,
/// ``unknown variant `KEY`, …``): such a message is rebuilt around the key's quoted form; any other
/// error about a hidden key is replaced by one that does not quote it.
#[cold]
fn key_error(key: &str, error: Error) -> Error {
    if !is_hidden_key(key) {
        return error;
    }
    let text = error.to_string();
    for lead in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = text
            .strip_prefix(lead)
            .and_then(|r| r.strip_prefix(key))
            .and_then(|r| r.strip_prefix('`'))
        {
            let lead = &lead[..lead.len() - 1];
            return de::Error::custom(format_args!("{lead}{}{rest}", quote_key(key, "`")));
        }
    }
    if text.contains(key) {
        return de::Error::custom(format_args!("invalid key {}", quote_key(key, "")));
    }
    error
}

/// What stands for a hidden key: `<hidden key, 40 characters>`.
pub fn hidden_key(key: &str) -> String {
    hidden(key.chars().count())
}

fn hidden(chars: usize) -> String {
    let s = if chars == 1 { "" } else { "s" };
    format!("<hidden key, {chars} character{s}>")
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl fmt::Display for KeyForm<'_> {
    /// The segment without its leading `.`: `name`, `["x.y"]`, `[<hidden key, 40 characters>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyForm::Plain(key) => f.write_str(key),
            // A token has no `"` or `\`: quoting is enough to make it a JSON string.
            KeyForm::Quoted(key) => write!(f, "[\"{key}\"]"),
            KeyForm::Hidden { chars } => write!(f, "[{}]", hidden(*chars)),
        }
    }
}

/// `parent.key`, `parent["x.y"]` or `parent[<hidden key, 40 characters>]` (for an empty `parent`, the
/// key alone: `key`, `["x.y"]`).
pub fn key_path(parent: &str, key: &str) -> String {
    match key_form(key) {
        KeyForm::Plain(key) if !parent.is_empty() => format!("{parent}.{key}"),
        form => format!("{parent}{form}"),
    }
}

/// Where in the value an error occurred.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path {
    segments: Vec<Segment>,
}

impl Path {
    pub fn iter(&self) -> std::slice::Iter<'_, Segment> {
        self.segments.iter()
    }
}

impl fmt::Display for Path {
    /// `a.b[2].c`, `a["x.y"]`, `a[<hidden key, 40 characters>]` (keys as [`key_form`] shows them);
    /// `.` for the value itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str(".");
        }
        let mut separator = "";
        for segment in &self.segments {
            let dotted = match segment {
                Segment::Seq { .. } => false,
                Segment::Map { key } => matches!(key_form(key), KeyForm::Plain(_)),
                Segment::Enum { variant } => matches!(key_form(variant), KeyForm::Plain(_)),
                Segment::Unknown => true,
            };
            if dotted {
                f.write_str(separator)?;
            }
            write!(f, "{segment}")?;
            separator = ".";
        }
        Ok(())
    }
}

/// A deserialization error and where it occurred.
#[derive(Debug)]
pub struct PathError {
    path: Path,
    error: Error,
}

impl PathError {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn into_inner(self) -> Error {
        self.error
    }
}

/// Deserialize `T` from `value`, reporting the path of the first error.
pub fn deserialize<'de, T: Deserialize<'de>>(value: &'de Value) -> Result<T, PathError> {
    let track = Track {
        stack: RefCell::new(Vec::new()),
        found: RefCell::new(None),
    };
    match T::deserialize(Tracked {
        value,
        track: &track,
    }) {
        Ok(t) => Ok(t),
        Err(error) => Err(PathError {
            path: Path {
                segments: track.found.into_inner().unwrap_or_default(),
            },
            error,
        }),
    }
}

/// Deserialize `T` from JSON text through a [`Value`] and [`deserialize`] (the path is dropped on error).
///
/// For values read back that the gateway wrote itself (the compiled configuration's route, plugin and
/// service records): going through the same `T::deserialize` instantiation as the validator, instead
/// of `serde_json::from_slice::<T>`, keeps a second copy of every configuration type's deserializer
/// (for serde_json's reader) out of the Worker's wasm. Costs building the `Value` first.
pub fn from_slice<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: Value = serde_json::from_slice(bytes)?;
    deserialize(&value).map_err(PathError::into_inner)
}

#[derive(Clone, Copy)]
enum Seg<'de> {
    Seq(usize),
    Map(&'de str),
    Enum(&'de str),
    Unknown,
}

impl Seg<'_> {
    fn owned(self) -> Segment {
        match self {
            Seg::Seq(index) => Segment::Seq { index },
            Seg::Map(key) => Segment::Map { key: key.into() },
            Seg::Enum(variant) => Segment::Enum {
                variant: variant.into(),
            },
            Seg::Unknown => Segment::Unknown,
        }
    }
}

/// The path to the value being read, and the path of the first error (the innermost place that saw
/// it: errors travel outwards, and the first one recorded stays).
struct Track<'de> {
    stack: RefCell<Vec<Seg<'de>>>,
    found: RefCell<Option<Vec<Segment>>>,
}

impl<'de> Track<'de> {
    #[cold]
    fn record(&self, extra: Option<Seg<'de>>) {
        let mut found = self.found.borrow_mut();
        if found.is_none() {
            let stack = self.stack.borrow();
            *found = Some(stack.iter().copied().chain(extra).map(Seg::owned).collect());
        }
    }

    fn check<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            self.record(None);
        }
        result
    }

    /// Run `f` with `seg` on the path; an error is recorded with it.
    fn within<T>(&self, seg: Seg<'de>, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        self.stack.borrow_mut().push(seg);
        let result = f();
        if result.is_err() {
            self.record(None);
        }
        self.stack.borrow_mut().pop();
        result
    }
}

#[derive(Clone, Copy)]
struct Tracked<'a, 'de> {
    value: &'de Value,
    track: &'a Track<'de>,
}

#[cold]
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => number_unexpected(n),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

fn number_unexpected(n: &Number) -> Unexpected<'static> {
    if let Some(u) = n.as_u64() {
        Unexpected::Unsigned(u)
    } else if let Some(i) = n.as_i64() {
        Unexpected::Signed(i)
    } else {
        Unexpected::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

#[cold]
fn invalid_type(value: &Value, exp: &dyn Expected) -> Error {
    de::Error::invalid_type(unexpected(value), exp)
}

impl<'a, 'de> Tracked<'a, 'de> {
    fn any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(v) => visitor.visit_bool(*v),
            Value::Number(n) => de::Deserializer::deserialize_any(n, visitor),
            Value::String(v) => visitor.visit_borrowed_str(v),
            Value::Array(v) => self.array(v, visitor),
            Value::Object(v) => self.object(v, visitor),
        }
    }

    fn number<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Number(n) => de::Deserializer::deserialize_any(n, visitor),
            _ => Err(invalid_type(self.value, &visitor)),
        }
    }

    fn array<V: Visitor<'de>>(self, array: &'de [Value], visitor: V) -> Result<V::Value, Error> {
        let len = array.len();
        let mut seq = SeqAccess {
            iter: array.iter(),
            index: 0,
            track: self.track,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.iter.len() == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(len, &"fewer elements in array"))
        }
    }

    fn object<V: Visitor<'de>>(
        self,
        map: &'de Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let len = map.len();
        let mut access = MapAccess {
            iter: map.iter(),
            value: None,
            key: None,
            track: self.track,
        };
        let out = visitor.visit_map(&mut access)?;
        if access.iter.len() == 0 {
            Ok(out)
        } else {
            Err(de::Error::invalid_length(len, &"fewer elements in map"))
        }
    }

    fn str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::String(v) => visitor.visit_borrowed_str(v),
            _ => Err(invalid_type(self.value, &visitor)),
        }
    }

    fn seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(v) => self.array(v, visitor),
            _ => Err(invalid_type(self.value, &visitor)),
        }
    }

    fn unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(invalid_type(self.value, &visitor)),
        }
    }

    fn bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::String(v) => visitor.visit_borrowed_str(v),
            Value::Array(v) => self.array(v, visitor),
            _ => Err(invalid_type(self.value, &visitor)),
        }
    }

    fn enumeration<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(map) => {
                let mut iter = map.iter();
                let (variant, value) = match iter.next() {
                    Some(v) => v,
                    None => {
                        return Err(de::Error::invalid_value(
                            Unexpected::Map,
                            &"map with a single key",
                        ))
                    }
                };
                if iter.next().is_some() {
                    return Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    ));
                }
                visitor.visit_enum(EnumAccess {
                    variant,
                    value: Some(value),
                    track: self.track,
                })
            }
            Value::String(variant) => visitor.visit_enum(EnumAccess {
                variant,
                value: None,
                track: self.track,
            }),
            other => Err(de::Error::invalid_type(unexpected(other), &"string or map")),
        }
    }
}

macro_rules! tracked_methods {
    ($($method:ident => $how:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                let track = self.track;
                track.check(self.$how(visitor))
            }
        )*
    };
}

impl<'a, 'de> de::Deserializer<'de> for Tracked<'a, 'de> {
    type Error = Error;

    tracked_methods! {
        deserialize_any => any,
        deserialize_i8 => number,
        deserialize_i16 => number,
        deserialize_i32 => number,
        deserialize_i64 => number,
        deserialize_i128 => number,
        deserialize_u8 => number,
        deserialize_u16 => number,
        deserialize_u32 => number,
        deserialize_u64 => number,
        deserialize_u128 => number,
        deserialize_f32 => number,
        deserialize_f64 => number,
        deserialize_char => str,
        deserialize_str => str,
        deserialize_string => str,
        deserialize_identifier => str,
        deserialize_bytes => bytes,
        deserialize_byte_buf => bytes,
        deserialize_unit => unit,
        deserialize_seq => seq,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.value {
            Value::Bool(v) => visitor.visit_bool(*v),
            _ => Err(invalid_type(self.value, &visitor)),
        };
        self.track.check(result)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        };
        self.track.check(result)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.track.check(self.unit(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.track.check(visitor.visit_newtype_struct(self))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.track.check(self.seq(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.track.check(self.seq(visitor))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.value {
            Value::Object(v) => self.object(v, visitor),
            _ => Err(invalid_type(self.value, &visitor)),
        };
        self.track.check(result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match self.value {
            Value::Array(v) => self.array(v, visitor),
            Value::Object(v) => self.object(v, visitor),
            _ => Err(invalid_type(self.value, &visitor)),
        };
        self.track.check(result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.track.check(self.enumeration(visitor))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.track.check(visitor.visit_unit())
    }
}

struct SeqAccess<'a, 'de> {
    iter: std::slice::Iter<'de, Value>,
    index: usize,
    track: &'a Track<'de>,
}

impl<'a, 'de> de::SeqAccess<'de> for SeqAccess<'a, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(value) => {
                let index = self.index;
                self.index += 1;
                let track = self.track;
                track
                    .within(Seg::Seq(index), || {
                        seed.deserialize(Tracked { value, track })
                    })
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        match self.iter.size_hint() {
            (lower, Some(upper)) if lower == upper => Some(upper),
            _ => None,
        }
    }
}

struct MapAccess<'a, 'de> {
    iter: serde_json::map::Iter<'de>,
    value: Option<&'de Value>,
    /// The segment of the value after the key last read: the key when it was read as a string.
    key: Option<Seg<'de>>,
    track: &'a Track<'de>,
}

impl<'a, 'de> de::MapAccess<'de> for MapAccess<'a, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let mut named = Named::No;
                let result = seed.deserialize(KeyDeserializer {
                    key,
                    named: &mut named,
                });
                let seg = match named {
                    Named::Text => Seg::Map(key),
                    // As read: without the whitespace serde_json allows after a number.
                    Named::Integer => Seg::Map(key.trim_end_matches([' ', '\n', '\t', '\r'])),
                    Named::No => Seg::Unknown,
                };
                self.key = Some(seg);
                match result {
                    Ok(k) => Ok(Some(k)),
                    Err(e) => {
                        self.track.record(Some(seg));
                        Err(key_error(key, e))
                    }
                }
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let seg = self.key.take().unwrap_or(Seg::Unknown);
        match self.value.take() {
            Some(value) => {
                let track = self.track;
                track.within(seg, || seed.deserialize(Tracked { value, track }))
            }
            None => self.track.check(Err(de::Error::custom("value is missing"))),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        match self.iter.size_hint() {
            (lower, Some(upper)) if lower == upper => Some(upper),
            _ => None,
        }
    }
}

/// A map key, as serde_json reads it (a string; numbers and booleans for keys of those types), noting
/// whether it was read as a string, an integer or a boolean (the path names the key only then, as
/// serde_path_to_error does).
struct KeyDeserializer<'b, 'de> {
    key: &'de str,
    named: &'b mut Named,
}

/// How a map key was read: whether the path names it.
#[derive(Clone, Copy)]
enum Named {
    No,
    Text,
    Integer,
}

/// Read a numeric key the way serde_json does: the key must be a JSON number and nothing else (no
/// whitespace either).
#[cold]
fn numeric_key<'de, V: Visitor<'de>>(
    key: &'de str,
    visitor: V,
    read: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
        V,
    ) -> Result<V::Value, Error>,
) -> Result<V::Value, Error> {
    if !matches!(key.as_bytes().first(), Some(b'0'..=b'9' | b'-')) {
        return Err(expected_numeric_key());
    }
    let mut de = serde_json::Deserializer::from_str(key);
    let number = read(&mut de, visitor)?;
    if de.end().is_err() || key.ends_with([' ', '\n', '\t', '\r']) {
        return Err(expected_numeric_key());
    }
    Ok(number)
}

/// Whether serde_json reads `key` as an integer for a numeric key type (serde_path_to_error then names
/// the key in the path, as it does for string keys; not for floats).
#[cold]
fn integer_key(key: &str) -> bool {
    matches!(key.as_bytes().first(), Some(b'0'..=b'9' | b'-'))
        && serde_json::from_str::<Number>(key).is_ok_and(|n| !n.is_f64())
}

/// serde_json's own error for a map key that is not a number where a number is expected.
#[cold]
fn expected_numeric_key() -> Error {
    let value = serde_json::json!({ "x": 0 });
    match std::collections::BTreeMap::<u8, u8>::deserialize(&value) {
        Err(e) => e,
        Ok(_) => de::Error::custom("expected key to be a number in quotes"),
    }
}

macro_rules! numeric_keys {
    ($($method:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                if integer_key(self.key) {
                    *self.named = Named::Integer;
                }
                numeric_key(self.key, visitor, |de, v| de::Deserializer::$method(de, v))
            }
        )*
    };
}

impl<'b, 'de> de::Deserializer<'de> for KeyDeserializer<'b, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.named = Named::Text;
        visitor.visit_borrowed_str(self.key)
    }

    numeric_keys! {
        deserialize_i8, deserialize_i16, deserialize_i32, deserialize_i64, deserialize_i128,
        deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64, deserialize_u128,
        deserialize_f32, deserialize_f64,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if matches!(self.key, "true" | "false") {
            *self.named = Named::Text;
        }
        match self.key {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(de::Error::invalid_type(Unexpected::Str(self.key), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Map keys cannot be null; read without noting (as serde_path_to_error does).
        visitor.visit_some(KeyDeserializer {
            key: self.key,
            named: &mut Named::No,
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(KeyDeserializer {
            key: self.key,
            named: &mut Named::No,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let de: de::value::BorrowedStrDeserializer<'de, Error> =
            de::value::BorrowedStrDeserializer::new(self.key);
        de.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

struct EnumAccess<'a, 'de> {
    variant: &'de str,
    value: Option<&'de Value>,
    track: &'a Track<'de>,
}

impl<'a, 'de> de::EnumAccess<'de> for EnumAccess<'a, 'de> {
    type Error = Error;
    type Variant = VariantAccess<'a, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let variant: de::value::StrDeserializer<'de, Error> = self.variant.into_deserializer();
        let value = match seed.deserialize(variant) {
            Ok(value) => value,
            Err(e) => {
                self.track.record(None);
                // The variant of `{"variant": ...}` is a key of the document; a string's is a value.
                return Err(match self.value {
                    Some(_) => key_error(self.variant, e),
                    None => e,
                });
            }
        };
        Ok((
            value,
            VariantAccess {
                variant: self.variant,
                value: self.value,
                track: self.track,
            },
        ))
    }
}

struct VariantAccess<'a, 'de> {
    variant: &'de str,
    value: Option<&'de Value>,
    track: &'a Track<'de>,
}

impl<'a, 'de> de::VariantAccess<'de> for VariantAccess<'a, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        self.track
            .within(Seg::Enum(self.variant), || match self.value {
                Some(value) => Deserialize::deserialize(value),
                None => Ok(()),
            })
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let track = self.track;
        track.within(Seg::Enum(self.variant), || match self.value {
            Some(value) => seed.deserialize(Tracked { value, track }),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        let track = self.track;
        track.within(Seg::Enum(self.variant), || match self.value {
            Some(value @ Value::Array(v)) => {
                if v.is_empty() {
                    visitor.visit_unit()
                } else {
                    Tracked { value, track }.array(v, visitor)
                }
            }
            Some(other) => Err(de::Error::invalid_type(unexpected(other), &"tuple variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let track = self.track;
        track.within(Seg::Enum(self.variant), || match self.value {
            Some(value @ Value::Object(v)) => Tracked { value, track }.object(v, visitor),
            Some(other) => Err(de::Error::invalid_type(
                unexpected(other),
                &"struct variant",
            )),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde::de::DeserializeOwned;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::{BTreeMap, HashMap};

    fn theirs_segments(path: &serde_path_to_error::Path) -> Vec<String> {
        path.iter()
            .map(|s| match s {
                serde_path_to_error::Segment::Seq { index } => format!("seq {index}"),
                serde_path_to_error::Segment::Map { key } => format!("map {key}"),
                serde_path_to_error::Segment::Enum { variant } => format!("enum {variant}"),
                serde_path_to_error::Segment::Unknown => "?".into(),
            })
            .collect()
    }

    fn ours_segments(path: &Path) -> Vec<String> {
        path.iter()
            .map(|s| match s {
                Segment::Seq { index } => format!("seq {index}"),
                Segment::Map { key } => format!("map {key}"),
                Segment::Enum { variant } => format!("enum {variant}"),
                Segment::Unknown => "?".into(),
            })
            .collect()
    }

    /// Ours and serde_path_to_error's over serde_json agree: the value, or the error, its path's
    /// segments and (when every key of the path is shown as is) the printed path.
    fn same<T: DeserializeOwned + std::fmt::Debug>(v: Value) -> String {
        let ours = deserialize::<T>(&v).map_err(|e| {
            let segs = ours_segments(e.path());
            let plain = e.path().iter().all(|s| match s {
                Segment::Map { key } => matches!(key_form(key), KeyForm::Plain(_)),
                Segment::Enum { variant } => matches!(key_form(variant), KeyForm::Plain(_)),
                _ => true,
            });
            let printed = if plain {
                e.path().to_string()
            } else {
                String::new()
            };
            (printed, segs, e.into_inner().to_string())
        });
        let theirs = serde_path_to_error::deserialize::<_, T>(&v).map_err(|e| {
            let segs = theirs_segments(e.path());
            let plain = e.path().iter().all(|s| match s {
                serde_path_to_error::Segment::Map { key } => {
                    matches!(key_form(key), KeyForm::Plain(_))
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    matches!(key_form(variant), KeyForm::Plain(_))
                }
                _ => true,
            });
            let printed = if plain {
                e.path().to_string()
            } else {
                String::new()
            };
            (printed, segs, e.into_inner().to_string())
        });
        let (a, b) = (format!("{ours:?}"), format!("{theirs:?}"));
        assert_eq!(a, b, "for {v}");
        a
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        port: u16,
        tags: Option<Vec<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Slow,
        Custom(u32),
        Window { size: u32, unit: Option<String> },
        Pair(u8, bool),
    }

    #[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
    #[serde(rename_all = "snake_case")]
    enum Key {
        Fast,
        Slow,
    }

    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Either {
        Num(i64),
        Text(String),
        Inner(Inner),
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type", rename_all = "kebab-case")]
    #[allow(dead_code)]
    enum Tagged {
        One { a: u8 },
        Two { b: String },
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Id(String);

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Flat {
        x: u8,
        #[serde(flatten)]
        rest: HashMap<String, Value>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
        list: Vec<Inner>,
        #[serde(default)]
        modes: Vec<Mode>,
        #[serde(default)]
        by_name: BTreeMap<String, Either>,
        #[serde(default)]
        by_code: BTreeMap<u16, String>,
        #[serde(default)]
        tagged: Option<Tagged>,
        #[serde(default)]
        id: Option<Id>,
        #[serde(default)]
        pair: Option<(u8, String)>,
        #[serde(default)]
        ratio: Option<f64>,
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        any: Option<Value>,
    }

    /// `from_slice` gives what `serde_json::from_slice` gives: the value, or an error (its message
    /// without serde_json's position, which a `Value` does not have).
    #[test]
    fn from_slice_reads_like_serde_json() {
        let text = br#"{"name": "a", "tags": ["x", "y"]}"#;
        let ours: Inner = from_slice(text).unwrap();
        let theirs: Inner = serde_json::from_slice(text).unwrap();
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        let wrong = from_slice::<Inner>(br#"{"name": 5}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(wrong, "invalid type: integer `5`, expected a string");
        assert!(from_slice::<Inner>(br#"{"name": "a", "other": 1}"#).is_err());
        assert!(from_slice::<Inner>(b"{").is_err());
        assert!(from_slice::<Inner>(br#"{"name": "a"} x"#).is_err());
    }

    #[test]
    fn agrees_with_serde_path_to_error() {
        let good = json!({
            "inner": {"name": "a", "port": 80},
            "list": [{"name": "b", "tags": ["x"]}],
            "modes": ["fast", {"custom": 3}, {"window": {"size": 2}}, {"pair": [1, true]}],
            "by_name": {"n": 1, "t": "s", "i": {"name": "c"}},
            "by_code": {"404": "x", "0": "y"},
            "tagged": {"type": "two", "b": "z"},
            "id": "i",
            "pair": [1, "p"],
            "ratio": 0.5,
            "flag": true,
            "any": {"deep": [1, {"x": null}]}
        });
        assert!(same::<Outer>(good.clone()).starts_with("Ok"));
        let base = || good.clone();
        let mut cases = Vec::new();
        let mut with = |f: &dyn Fn(&mut Value)| {
            let mut v = base();
            f(&mut v);
            cases.push(v);
        };
        with(&|v| v["inner"]["port"] = json!("80"));
        with(&|v| v["inner"]["port"] = json!(70000));
        with(&|v| v["inner"]["port"] = json!(-1));
        with(&|v| v["inner"]["port"] = json!(1.5));
        with(&|v| v["inner"]["colour"] = json!(1));
        with(&|v| v["inner"].as_object_mut().unwrap().clear());
        with(&|v| v["inner"] = json!(null));
        with(&|v| v["inner"] = json!([1]));
        with(&|v| v["inner"] = json!(["n", 1, null, 4]));
        with(&|v| v["list"][0]["tags"] = json!(["x", 2]));
        with(&|v| v["list"][0]["tags"] = json!("x"));
        with(&|v| v["list"] = json!({}));
        with(&|v| v["modes"][0] = json!("medium"));
        with(&|v| v["modes"][1] = json!({"custom": "3"}));
        with(&|v| v["modes"][1] = json!({"custom": 3, "fast": null}));
        with(&|v| v["modes"][1] = json!({}));
        with(&|v| v["modes"][1] = json!("custom"));
        with(&|v| v["modes"][1] = json!({"fast": 1}));
        with(&|v| v["modes"][1] = json!(7));
        with(&|v| v["modes"][2] = json!({"window": {"size": 2, "unit": 5}}));
        with(&|v| v["modes"][2] = json!({"window": [2]}));
        with(&|v| v["modes"][2] = json!({"window": "x"}));
        with(&|v| v["modes"][2] = json!("window"));
        with(&|v| v["modes"][3] = json!({"pair": [1]}));
        with(&|v| v["modes"][3] = json!({"pair": [1, true, 3]}));
        with(&|v| v["modes"][3] = json!({"pair": []}));
        with(&|v| v["modes"][3] = json!({"pair": 1}));
        with(&|v| v["by_name"]["i"] = json!({"name": 1}));
        with(&|v| v["by_name"]["i"] = json!([]));
        with(&|v| v["by_code"] = json!({"x": "a"}));
        with(&|v| v["by_code"] = json!({"1 ": "a"}));
        with(&|v| v["by_code"] = json!({"99999": "a"}));
        with(&|v| v["by_code"] = json!({"1": 2}));
        with(&|v| v["by_code"] = json!({"-1": "a"}));
        with(&|v| v["by_code"] = json!({"1.5": "a"}));
        with(&|v| v["by_code"] = json!({"-0": "a"}));
        with(&|v| v["by_code"] = json!({"1e2": "a"}));
        with(&|v| v["tagged"] = json!({"type": "three"}));
        with(&|v| v["tagged"] = json!({"type": "one", "a": "x"}));
        with(&|v| v["tagged"] = json!({"a": 1}));
        with(&|v| v["id"] = json!(5));
        with(&|v| v["pair"] = json!([1]));
        with(&|v| v["pair"] = json!([1, 2]));
        with(&|v| v["pair"] = json!([1, "a", 3]));
        with(&|v| v["ratio"] = json!("1"));
        with(&|v| v["flag"] = json!("true"));
        with(&|v| v["extra"] = json!(1));
        for v in cases {
            let out = same::<Outer>(v.clone());
            assert!(out.starts_with("Err"), "{v}: {out}");
        }
        for v in [
            json!(null),
            json!(1),
            json!("s"),
            json!([]),
            json!({"x": 1, "y": 2}),
        ] {
            same::<Outer>(v.clone());
            same::<Flat>(v.clone());
            same::<Either>(v.clone());
            same::<Mode>(v.clone());
            same::<Vec<Inner>>(v.clone());
            same::<BTreeMap<String, u8>>(v.clone());
            same::<()>(v);
        }
        same::<Flat>(json!({"x": "1", "y": 2}));
        same::<Flat>(json!({"y": 2}));
        same::<BTreeMap<bool, u8>>(json!({"true": 1, "no": 2}));
        same::<BTreeMap<i8, u8>>(json!({"-5": 1, "-500": 2}));
        same::<BTreeMap<Key, u8>>(json!({"fast": 1, "slow": 2}));
        same::<BTreeMap<Key, u8>>(json!({"fast": 1, "never": 2}));
        same::<BTreeMap<Key, Inner>>(json!({"fast": {"name": 1}}));
        same::<BTreeMap<u8, Inner>>(json!({"1": {"name": 1}}));
        same::<Option<Option<u8>>>(json!("x"));
        same::<BTreeMap<String, u8>>(json!({" a ": "x"}));
    }

    #[test]
    fn path_display() {
        let e = deserialize::<Outer>(&json!({"inner": {"name": "a"}, "list": [{"name": 1}]}))
            .unwrap_err();
        assert_eq!(e.path().to_string(), "list[0].name");
        let e = deserialize::<u8>(&json!("x")).unwrap_err();
        assert_eq!(e.path().to_string(), ".");
        assert_eq!(
            e.into_inner().to_string(),
            "invalid type: string \"x\", expected u8"
        );
    }

    /// A key that does not look like a name never appears in a printed path; where it is still does.
    #[test]
    fn keys_in_paths_are_shown_only_when_they_look_like_names() {
        let path = |v: Value| {
            deserialize::<BTreeMap<String, BTreeMap<String, u8>>>(&v)
                .unwrap_err()
                .path()
                .to_string()
        };
        assert_eq!(path(json!({"a": {"x-y_Z$9": "1"}})), "a.x-y_Z$9");
        assert_eq!(path(json!({"a": {"x.y": "1"}})), "a[\"x.y\"]");
        assert_eq!(
            path(json!({"a": {"!#$%&'*+-.^_`|~": "1"}})),
            "a[\"!#$%&'*+-.^_`|~\"]"
        );
        assert_eq!(path(json!({"a": {"": "1"}})), "a[\"\"]");
        assert_eq!(path(json!({"x.y": {"b": "1"}})), "[\"x.y\"].b");
        let secret = "Authorization: Bearer sk-live-0123456789abcdef";
        let printed = path(json!({"a": {secret: "1"}}));
        assert_eq!(printed, "a[<hidden key, 46 characters>]");
        let printed = path(json!({ secret: {"b": "1"}}));
        assert_eq!(printed, "[<hidden key, 46 characters>].b");
        // A plain word or a token longer than 32 characters is hidden too (an API key often is one).
        let long = "sk-proj-0123456789abcdefghijklmnopqrstuv";
        assert_eq!(
            path(json!({"a": {long: "1"}})),
            "a[<hidden key, 40 characters>]"
        );
        let key32 = "a".repeat(32);
        assert_eq!(path(json!({"a": {&key32: "1"}})), format!("a.{key32}"));
        let jwt33 = format!("{}.{}", "e".repeat(16), "f".repeat(16));
        assert_eq!(
            path(json!({"a": {&jwt33: "1"}})),
            "a[<hidden key, 33 characters>]"
        );
        // Characters, not bytes; a space, a quote or a non-ASCII letter is not in a token.
        assert_eq!(
            path(json!({"a": {"x y": "1"}})),
            "a[<hidden key, 3 characters>]"
        );
        assert_eq!(
            path(json!({"a": {"\"": "1"}})),
            "a[<hidden key, 1 character>]"
        );
        assert_eq!(
            path(json!({"a": {"é": "1"}})),
            "a[<hidden key, 1 character>]"
        );
        assert_eq!(key_path("", "a"), "a");
        assert_eq!(key_path("p", "a"), "p.a");
        assert_eq!(key_path("p", "a b"), "p[<hidden key, 3 characters>]");
        assert_eq!(hidden_key("a b"), "<hidden key, 3 characters>");
        assert!(is_hidden_key("a b") && !is_hidden_key("a.b") && !is_hidden_key(""));
    }
    /// serde's messages about a key (unknown field, unknown variant) quote it by the same rule as
    /// paths, where serde made them: shown keys as before, hidden keys only by their length.
    #[test]
    fn keys_in_messages_follow_the_rule_of_paths() {
        let message = |v: Value| {
            let e = deserialize::<Inner>(&v).unwrap_err();
            (e.path().to_string(), e.into_inner().to_string())
        };
        let expected = "expected one of `name`, `port`, `tags`";
        assert_eq!(
            message(json!({"name": "a", "nmae": 1})),
            ("nmae".into(), format!("unknown field `nmae`, {expected}"))
        );
        assert_eq!(
            message(json!({"name": "a", "x.y": 1})),
            (
                "[\"x.y\"]".into(),
                format!("unknown field `x.y`, {expected}")
            )
        );
        let secret = "Authorization: Bearer sk-live-0123456789abcdef";
        assert_eq!(
            message(json!({ secret: 1 })),
            (
                "[<hidden key, 46 characters>]".into(),
                format!("unknown field `<hidden key, 46 characters>`, {expected}")
            )
        );
        // A hidden key that is itself the text of another key's placeholder is not confused with it.
        let lookalike = "<hidden key, 46 characters>";
        assert_eq!(
            message(json!({ lookalike: 1 })),
            (
                "[<hidden key, 27 characters>]".into(),
                format!("unknown field `<hidden key, 27 characters>`, {expected}")
            )
        );
        // The variant of an enum written as `{"variant": ...}` is a key; a variant string is a value.
        let e = deserialize::<Vec<Mode>>(&json!([{ secret: 1 }])).unwrap_err();
        assert_eq!(e.path().to_string(), "[0]");
        let text = e.into_inner().to_string();
        assert!(
            text.starts_with("unknown variant `<hidden key, 46 characters>`, expected one of"),
            "{text}"
        );
        let e = deserialize::<Vec<Mode>>(&json!([{"quick": 1}])).unwrap_err();
        assert!(e
            .into_inner()
            .to_string()
            .starts_with("unknown variant `quick`, expected"));
        // A map keyed by an enum (the path does not name such a key, as serde_path_to_error's).
        let e = deserialize::<BTreeMap<Key, u8>>(&json!({ secret: 1 })).unwrap_err();
        assert_eq!(e.path().to_string(), "?");
        assert_eq!(
            e.into_inner().to_string(),
            "unknown variant `<hidden key, 46 characters>`, expected `fast` or `slow`"
        );
        assert_eq!(quote_key("x-y", "\"").to_string(), "\"x-y\"");
        assert_eq!(quote_key("x.y", "`").to_string(), "`x.y`");
        assert_eq!(quote_key("", "\"").to_string(), "\"\"");
        assert_eq!(
            quote_key("a b", "\"").to_string(),
            "<hidden key, 3 characters>"
        );
        assert_eq!(
            quote_key("a b", "`").to_string(),
            "`<hidden key, 3 characters>`"
        );
        assert_eq!(
            quote_as("b@d", "\"", "name").to_string(),
            "<hidden name, 3 characters>"
        );
        assert_eq!(quote_as("b$d", "\"", "name").to_string(), "\"b$d\"");
        assert_eq!(
            quote_as("@", "", "name").to_string(),
            "<hidden name, 1 character>"
        );
        assert_eq!(
            quote_key(&"k".repeat(33), "").to_string(),
            "<hidden key, 33 characters>"
        );
    }
}
