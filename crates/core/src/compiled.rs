//! The compiled form of a configuration version: what `edgegate-config push` stores next to each JSON
//! version (`config/compiled/<n>`), so that a new isolate loads a version without parsing, validating
//! or compiling its routes (see docs/configuration.md, "The compiled form").
//!
//! Layout (little-endian):
//!
//! ```text
//! magic        4 bytes  "EGWC"
//! layout       u32      LAYOUT: the byte layout below
//! fingerprint  u64      fingerprint() of the JSON document it was compiled from
//! checksum     u64      fingerprint() of everything after the header
//! version      u32 length + bytes: the gateway version that wrote it (GATEWAY_VERSION)
//! -- body --
//! services     u32 length + the services as a JSON array (few; read at load)
//! plugins      u32 length + `Plugins::encode` (instances as JSON, compiled on first use)
//! index        u32 length + the routing index (`router::index`, read in place)
//! ```
//!
//! The Worker uses it only when the header matches this gateway exactly and the fingerprint matches the
//! JSON stored under the same version; otherwise it falls back to the JSON and says why ([`Unused`]).

/// Start of every compiled form.
pub const MAGIC: &[u8; 4] = b"EGWC";
/// Version of the byte layout; changed whenever the layout or the meaning of a field changes.
pub const LAYOUT: u32 = 1;
/// The gateway version a compiled form must come from.
pub const GATEWAY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A 64-bit fingerprint of bytes (not cryptographic: it detects a JSON document changed after it was
/// compiled, and damaged bytes). Four independent lanes of 8 bytes, so that a megabyte costs a fraction
/// of a millisecond in wasm too.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    let word = |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let round = |h: u64, w: u64| (h ^ w.wrapping_mul(K2)).rotate_left(31).wrapping_mul(K1);
    let mut lanes = [K1, K2, K1 ^ K2, (bytes.len() as u64).wrapping_mul(K1)];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (k, lane) in lanes.iter_mut().enumerate() {
            *lane = round(*lane, word(&block[k * 8..k * 8 + 8]));
        }
    }
    let mut h = lanes
        .iter()
        .fold((bytes.len() as u64) ^ K2, |h, &l| round(h, l));
    let rest = blocks.remainder();
    let mut words = rest.chunks_exact(8);
    for w in &mut words {
        h = round(h, word(w));
    }
    for &b in words.remainder() {
        h = round(h, u64::from(b));
    }
    // Final mix, so that every input bit reaches every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(K2);
    h ^= h >> 29;
    h
}

/// Why a compiled form was not used (the `reason` of the `config_compiled_unused` log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unused {
    /// No compiled form is stored for the version (written directly to KV, or by an older CLI).
    Missing,
    /// It was compiled from another document than the one stored now.
    Stale,
    /// Written by another gateway version or layout.
    OtherVersion(String),
    /// Not a compiled form, or damaged.
    Corrupt(String),
}

impl Unused {
    /// Short machine reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Unused::Missing => "missing",
            Unused::Stale => "stale",
            Unused::OtherVersion(_) => "other_version",
            Unused::Corrupt(_) => "corrupt",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Unused::Missing => "no compiled form is stored for this version".into(),
            Unused::Stale => {
                "the compiled form was made from another document than the one stored".into()
            }
            Unused::OtherVersion(v) => {
                format!("written by gateway {v}, this is {GATEWAY_VERSION} (layout {LAYOUT})")
            }
            Unused::Corrupt(e) => e.clone(),
        }
    }
}

/// The parts of a compiled form.
pub struct Parts<'a> {
    pub services: &'a [u8],
    pub plugins: &'a [u8],
    pub index: &'a [u8],
}

/// Assemble a compiled form.
pub fn write(json: &[u8], parts: &Parts<'_>) -> Vec<u8> {
    let mut body =
        Vec::with_capacity(12 + parts.services.len() + parts.plugins.len() + parts.index.len());
    for part in [parts.services, parts.plugins, parts.index] {
        body.extend_from_slice(&(part.len() as u32).to_le_bytes());
        body.extend_from_slice(part);
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&LAYOUT.to_le_bytes());
    out.extend_from_slice(&fingerprint(json).to_le_bytes());
    out.extend_from_slice(&fingerprint(&body).to_le_bytes());
    out.extend_from_slice(&(GATEWAY_VERSION.len() as u32).to_le_bytes());
    out.extend_from_slice(GATEWAY_VERSION.as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Check a compiled form against the JSON stored under the same version and split it into its parts.
/// Costs one pass over each (the fingerprints), nothing per route.
pub fn read<'a>(blob: &'a [u8], json: &[u8]) -> Result<Parts<'a>, Unused> {
    let corrupt = |what: &str| Unused::Corrupt(format!("the compiled form is damaged: {what}"));
    let mut r = Reader::new(blob);
    if r.bytes(4) != Some(MAGIC.as_slice()) {
        return Err(Unused::Corrupt(
            "not a compiled configuration (bad magic)".into(),
        ));
    }
    let layout = r.u32().ok_or_else(|| corrupt("truncated header"))?;
    let json_print = r.u64().ok_or_else(|| corrupt("truncated header"))?;
    let checksum = r.u64().ok_or_else(|| corrupt("truncated header"))?;
    let version_len = r.u32().ok_or_else(|| corrupt("truncated header"))? as usize;
    let version = r
        .bytes(version_len.min(64))
        .ok_or_else(|| corrupt("truncated header"))?;
    let version = String::from_utf8_lossy(version);
    if layout != LAYOUT || version != GATEWAY_VERSION {
        return Err(Unused::OtherVersion(format!("{version} (layout {layout})")));
    }
    let body = r.rest();
    if fingerprint(body) != checksum {
        return Err(corrupt("checksum mismatch"));
    }
    if fingerprint(json) != json_print {
        return Err(Unused::Stale);
    }
    let mut b = Reader::new(body);
    let mut part = || {
        let len = b.u32()? as usize;
        b.bytes(len)
    };
    let (Some(services), Some(plugins), Some(index)) = (part(), part(), part()) else {
        return Err(corrupt("truncated body"));
    };
    Ok(Parts {
        services,
        plugins,
        index,
    })
}

/// Bounds-checked little-endian reads.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        Some(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// A u32 count, then that many u32.
    pub(crate) fn u32s(&mut self) -> Option<Vec<u32>> {
        let n = self.u32()? as usize;
        let raw = self.bytes(n.checked_mul(4)?)?;
        Some(
            raw.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = self.bytes.get(self.at..).unwrap_or(&[]);
        self.at = self.bytes.len();
        out
    }

    /// `Some(())` when everything was read.
    pub(crate) fn end(&self) -> Option<()> {
        (self.at == self.bytes.len()).then_some(())
    }
}
