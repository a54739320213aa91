//! docs/configuration.md, "Limits": `edgegate-config` refuses documents larger than 25 MiB (the largest
//! value Workers KV stores), and accepts one of exactly 25 MiB. Run on the built binary, as a user would.

use std::process::Command;

const MIB_25: usize = 25 * 1024 * 1024;

fn validate(bytes: &[u8], name: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!(
        "edgegate-limits-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgegate-config"))
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    out
}

/// `{"format_version": 1}` padded with spaces to `len` bytes.
fn document(len: usize) -> Vec<u8> {
    let mut doc = br#"{"format_version": 1}"#.to_vec();
    doc.resize(len, b' ');
    doc
}

#[test]
fn a_document_of_25_mib_is_accepted_one_byte_more_is_refused() {
    let out = validate(&document(MIB_25), "max");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: 0 services, 0 routes\n"
    );

    let out = validate(&document(MIB_25 + 1), "over");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("is larger than 26214400 bytes, the most a KV value can hold"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// docs/configuration.md, "Top level": at most 10,000 services, 100,000 routes and 10,000 plugin instances.
#[test]
fn too_many_services_routes_or_plugins_are_refused_with_their_path() {
    let services: Vec<_> = (0..10_001)
        .map(|i| serde_json::json!({"name": format!("s{i}"), "url": "http://a"}))
        .collect();
    let routes: Vec<_> = (0..100_001)
        .map(|i| serde_json::json!({"name": format!("r{i}"), "service": "s", "paths": [format!("/p{i}")]}))
        .collect();
    let plugins: Vec<_> = (0..10_001)
        .map(|i| serde_json::json!({"name": "cors", "id": format!("p{i}"), "config": {"origins": ["*"]}}))
        .collect();
    let one_service = serde_json::json!([{"name": "s", "url": "http://a"}]);
    for (name, doc, expected) in [
        (
            "services",
            serde_json::json!({"format_version": 1, "services": services}),
            "services: too many services: 10001 (at most 10000)\n",
        ),
        (
            "routes",
            serde_json::json!({"format_version": 1, "services": one_service, "routes": routes}),
            "routes: too many routes: 100001 (at most 100000)\n",
        ),
        (
            "plugins",
            serde_json::json!({"format_version": 1, "plugins": plugins}),
            "plugins: too many plugins: 10001 (at most 10000)\n",
        ),
    ] {
        let out = validate(doc.to_string().as_bytes(), name);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{name}");
    }
}
