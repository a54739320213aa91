//! Native cost of the identity checks: one RS256, ES256 and EdDSA verification, one PBKDF2 password
//! check at the default cost, one API-key digest. `cargo bench -p edgegate-core --bench auth`.

use edgegate_core::auth::{basic, jwt, keyauth, records::JwtCredential};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::Instant;

fn time(label: &str, iterations: u32, mut f: impl FnMut()) {
    f();
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = started.elapsed().as_secs_f64() / iterations as f64;
    println!("{label:<44} {:>10.1} µs", per * 1e6);
}

fn main() {
    let cfg: jwt::JwtConfig = edgegate_core::plugins::settings(&serde_json::json!({})).unwrap();
    let now = 1_750_000_000u64;
    let claims = serde_json::json!({"iss": "a", "exp": now + 600});
    for (label, alg, private, public) in [
        (
            "jwt RS256 (2048-bit) parse + verify + claims",
            Algorithm::RS256,
            include_str!("../src/auth/testdata/rsa.key"),
            include_str!("../src/auth/testdata/rsa.pub"),
        ),
        (
            "jwt ES256 parse + verify + claims",
            Algorithm::ES256,
            include_str!("../src/auth/testdata/ec.key"),
            include_str!("../src/auth/testdata/ec.pub"),
        ),
        (
            "jwt EdDSA parse + verify + claims",
            Algorithm::EdDSA,
            include_str!("../src/auth/testdata/ed.key"),
            include_str!("../src/auth/testdata/ed.pub"),
        ),
    ] {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(private.as_bytes()),
            Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()),
            _ => EncodingKey::from_ed_pem(private.as_bytes()),
        }
        .unwrap();
        let token = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
        let cred = JwtCredential {
            id: "x".into(),
            consumer_id: "c".into(),
            key: "a".into(),
            algorithms: vec![],
            secret: None,
            public_key: Some(public.into()),
            jwk: None,
            jwks_url: None,
            created_at: 0,
        };
        time(label, 200, || {
            let t = jwt::parse(&token, 8192).unwrap();
            let jwt::CredentialKey::Static(k) = jwt::credential_key(&cred).unwrap() else {
                panic!()
            };
            jwt::verify(&cfg, &t, &cred, &k, None, now).unwrap();
        });
    }
    let stored = basic::hash_password(
        "correct horse",
        b"0123456789abcdef",
        basic::DEFAULT_ITERATIONS,
    );
    time("basic-auth PBKDF2-SHA256 10k iterations", 50, || {
        assert!(basic::verify_password("correct horse", &stored).unwrap());
    });
    let stored100k = basic::hash_password("correct horse", b"0123456789abcdef", 100_000);
    time("basic-auth PBKDF2-SHA256 100k iterations", 5, || {
        assert!(basic::verify_password("correct horse", &stored100k).unwrap());
    });
    time("key-auth SHA-256 digest", 10_000, || {
        std::hint::black_box(keyauth::lookup_key(
            "eg_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        ));
    });
}
