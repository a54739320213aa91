//! Native tests of every check the identity features rely on, with time injected.

use super::jwks::{JwksCache, Plan};
use super::jwt::{self, JwtConfig, JwtError};
use super::records::JwtCredential;
use super::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const RSA_KEY: &str = include_str!("testdata/rsa.key");
const RSA_PUB: &str = include_str!("testdata/rsa.pub");
const RSA2_KEY: &str = include_str!("testdata/rsa2.key");
const EC_KEY: &str = include_str!("testdata/ec.key");
const EC_PUB: &str = include_str!("testdata/ec.pub");
const ED_KEY: &str = include_str!("testdata/ed.key");
const ED_PUB: &str = include_str!("testdata/ed.pub");
const NOW: u64 = 1_750_000_000;

fn config() -> JwtConfig {
    crate::plugins::settings::<JwtConfig>(&json!({}))
        .unwrap()
        .validate()
        .unwrap()
}

fn claims() -> serde_json::Value {
    json!({"iss": "issuer-a", "sub": "alice", "exp": NOW + 600, "iat": NOW})
}

fn sign(
    alg: Algorithm,
    key: &EncodingKey,
    claims: &serde_json::Value,
    kid: Option<&str>,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap()
}

fn cred(f: impl FnOnce(&mut JwtCredential)) -> JwtCredential {
    let mut c = JwtCredential {
        id: "cred-1".into(),
        consumer_id: "c1".into(),
        key: "issuer-a".into(),
        algorithms: vec![],
        secret: None,
        public_key: None,
        jwk: None,
        jwks_url: None,
        created_at: 0,
    };
    f(&mut c);
    c
}

/// The whole path the glue takes for a credential with a fixed key.
fn check(token: &str, cred: &JwtCredential, cfg: &JwtConfig, now: u64) -> Result<(), JwtError> {
    let t = jwt::parse(token, cfg.max_token_bytes)?;
    assert_eq!(t.key_claim(&cfg.key_claim_name)?, cred.key);
    let jwt::CredentialKey::Static(key) = jwt::credential_key(cred)? else {
        panic!("static key expected")
    };
    jwt::verify(cfg, &t, cred, &key, None, now)
}

fn rsa_cred() -> JwtCredential {
    cred(|c| c.public_key = Some(RSA_PUB.into()))
}

#[test]
fn valid_rs256_es256_eddsa_and_hs256_tokens_pass() {
    let cfg = config();
    let t = sign(Algorithm::RS256, &rsa(), &claims(), None);
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW), Ok(()));
    let t = sign(Algorithm::PS256, &rsa(), &claims(), None);
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW), Ok(()));

    let ec = EncodingKey::from_ec_pem(EC_KEY.as_bytes()).unwrap();
    let t = sign(Algorithm::ES256, &ec, &claims(), None);
    assert_eq!(
        check(&t, &cred(|c| c.public_key = Some(EC_PUB.into())), &cfg, NOW),
        Ok(())
    );

    let ed = EncodingKey::from_ed_pem(ED_KEY.as_bytes()).unwrap();
    let t = sign(Algorithm::EdDSA, &ed, &claims(), None);
    assert_eq!(
        check(&t, &cred(|c| c.public_key = Some(ED_PUB.into())), &cfg, NOW),
        Ok(())
    );

    let secret = b"a shared secret of thirty-two b!";
    let t = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret),
        &claims(),
        None,
    );
    let hs = cred(|c| c.secret = Some(STANDARD.encode(secret)));
    assert_eq!(check(&t, &hs, &cfg, NOW), Ok(()));
}

#[test]
fn alg_none_is_rejected_in_any_case() {
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for alg in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        for sig in ["", "c2ln"] {
            let token = format!("{header}.{payload}.{sig}");
            let err = jwt::parse(&token, 8192).unwrap_err();
            assert_eq!(err, JwtError::AlgNone, "{alg} {sig:?}");
            assert_eq!(err.failure(), AuthFailure::InvalidCredentials);
        }
    }
}

#[test]
fn hmac_with_the_rsa_public_key_as_secret_is_rejected() {
    // The classic confusion: sign HS256 with the (public) RSA key's PEM bytes.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUB.as_bytes()),
        &claims(),
        None,
    );
    assert_eq!(
        check(&forged, &rsa_cred(), &config(), NOW),
        Err(JwtError::AlgNotAllowed)
    );
    // Even when the credential lists HS256 among its algorithms.
    let lax = cred(|c| {
        c.public_key = Some(RSA_PUB.into());
        c.algorithms = vec!["HS256".into(), "RS256".into()];
    });
    assert_eq!(
        check(&forged, &lax, &config(), NOW),
        Err(JwtError::AlgNotAllowed)
    );
}

#[test]
fn algorithm_not_allowed_for_the_credential_is_rejected() {
    let only_rs256 = cred(|c| {
        c.public_key = Some(RSA_PUB.into());
        c.algorithms = vec!["RS256".into()];
    });
    let ps = sign(Algorithm::PS256, &rsa(), &claims(), None);
    assert_eq!(
        check(&ps, &only_rs256, &config(), NOW),
        Err(JwtError::AlgNotAllowed)
    );
    let rs512 = sign(Algorithm::RS512, &rsa(), &claims(), None);
    assert_eq!(
        check(&rs512, &only_rs256, &config(), NOW),
        Err(JwtError::AlgNotAllowed)
    );
    // A JWK pinning its algorithm wins over the family.
    let allowed = jwt::allowed_algorithms(
        &[],
        jsonwebtoken::AlgorithmFamily::Rsa,
        Some(Algorithm::RS256),
    );
    assert_eq!(allowed, vec![Algorithm::RS256]);
}

#[test]
fn expired_and_not_yet_valid_tokens_with_leeway() {
    let cfg = config(); // leeway 30 s
    let mut c = claims();
    c["exp"] = json!(NOW - 31);
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    let err = check(&t, &rsa_cred(), &cfg, NOW).unwrap_err();
    assert_eq!(err, JwtError::Expired);
    assert_eq!(err.failure(), AuthFailure::TokenExpired);
    assert_eq!(err.failure().code(), "token_expired");
    // Within the leeway it still passes.
    c["exp"] = json!(NOW - 29);
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW), Ok(()));

    let mut c = claims();
    c["nbf"] = json!(NOW + 31);
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    let err = check(&t, &rsa_cred(), &cfg, NOW).unwrap_err();
    assert_eq!(err.failure().code(), "token_not_yet_valid");
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW + 2), Ok(()));
}

#[test]
fn exp_is_required_by_default_and_maximum_expiration_is_enforced() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    assert_eq!(
        check(&t, &rsa_cred(), &config(), NOW),
        Err(JwtError::MissingClaim("exp".into()))
    );
    let mut cfg = config();
    cfg.maximum_expiration = 300;
    let t = sign(Algorithm::RS256, &rsa(), &claims(), None); // exp = now + 600
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW), Err(JwtError::TooLong));
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW + 400), Ok(()));
    // A non-numeric exp is refused, not read as "no exp".
    let mut c = claims();
    c["exp"] = json!("tomorrow");
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    assert_eq!(
        check(&t, &rsa_cred(), &config(), NOW),
        Err(JwtError::NotANumber("exp".into()))
    );
}

#[test]
fn time_claims_present_but_not_numbers_are_refused_required_or_not() {
    let bad_values = [
        json!(null),
        json!("1750000600"),
        json!(""),
        json!(true),
        json!(false),
        json!({"at": NOW + 600}),
        json!([NOW + 600]),
        json!([]),
    ];
    let mut required_none = config();
    required_none.claims_to_verify = vec![];
    let mut required_all = config();
    required_all.claims_to_verify = vec!["exp".into(), "nbf".into()];
    let mut with_max = config();
    with_max.maximum_expiration = 3600;
    for claim in jwt::TIME_CLAIMS {
        for bad in &bad_values {
            let mut c = claims();
            c["nbf"] = json!(NOW - 10);
            c[claim] = bad.clone();
            let t = sign(Algorithm::RS256, &rsa(), &c, None);
            for cfg in [&config(), &required_none, &required_all, &with_max] {
                let err = check(&t, &rsa_cred(), cfg, NOW).unwrap_err();
                assert_eq!(
                    err,
                    JwtError::NotANumber(claim.into()),
                    "{claim} = {bad} with claims_to_verify {:?}",
                    cfg.claims_to_verify
                );
                assert_eq!(err.failure().code(), "invalid_credentials");
                assert_eq!(
                    err.detail(),
                    format!("the token's `{claim}` claim must be a number")
                );
                // The claims-only path (a signature already verified and remembered) refuses it too.
                let parsed = jwt::parse(&t, cfg.max_token_bytes).unwrap();
                assert_eq!(
                    jwt::check_claims(cfg, &parsed.claims, NOW),
                    Err(JwtError::NotANumber(claim.into()))
                );
            }
        }
        // Numbers of either JSON kind are fine, and an absent optional claim is fine.
        let mut c = claims();
        c["nbf"] = json!(NOW - 10);
        c[claim] = json!((NOW + 10) as f64 + 0.5);
        if claim == "nbf" {
            c[claim] = json!((NOW - 10) as f64 + 0.5);
        }
        let t = sign(Algorithm::RS256, &rsa(), &c, None);
        assert_eq!(check(&t, &rsa_cred(), &config(), NOW), Ok(()), "{claim}");
        if claim != "exp" {
            c.as_object_mut().unwrap().remove(claim);
            let t = sign(Algorithm::RS256, &rsa(), &c, None);
            assert_eq!(check(&t, &rsa_cred(), &config(), NOW), Ok(()), "{claim}");
        }
    }
}

#[test]
fn wrong_issuer_or_audience_is_rejected() {
    let mut cfg = config();
    cfg.issuers = vec!["https://idp.example".into()];
    let t = sign(Algorithm::RS256, &rsa(), &claims(), None);
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW), Err(JwtError::BadIssuer));

    let mut cfg = config();
    cfg.audiences = vec!["api".into()];
    assert_eq!(
        check(&t, &rsa_cred(), &cfg, NOW),
        Err(JwtError::BadAudience)
    );
    let mut c = claims();
    c["aud"] = json!(["other", "api"]);
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    assert_eq!(check(&t, &rsa_cred(), &cfg, NOW), Ok(()));
    c["aud"] = json!("web");
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    assert_eq!(
        check(&t, &rsa_cred(), &cfg, NOW),
        Err(JwtError::BadAudience)
    );
}

#[test]
fn tampered_payload_or_signature_is_rejected() {
    let t = sign(Algorithm::RS256, &rsa(), &claims(), None);
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("admin");
    let forged_payload = URL_SAFE_NO_PAD.encode(c.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        check(&tampered, &rsa_cred(), &config(), NOW),
        Err(JwtError::BadSignature)
    );

    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let tampered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    let err = check(&tampered, &rsa_cred(), &config(), NOW).unwrap_err();
    assert_eq!(err, JwtError::BadSignature);
    assert_eq!(err.detail(), "the token is not valid");

    // Signed by another RSA key.
    let other = EncodingKey::from_rsa_pem(RSA2_KEY.as_bytes()).unwrap();
    let t = sign(Algorithm::RS256, &other, &claims(), None);
    assert_eq!(
        check(&t, &rsa_cred(), &config(), NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn malformed_base64_and_json_are_rejected() {
    let good = sign(Algorithm::RS256, &rsa(), &claims(), None);
    let parts: Vec<&str> = good.split('.').collect();
    let not_json = URL_SAFE_NO_PAD.encode("{not json");
    let array = URL_SAFE_NO_PAD.encode("[1,2]");
    let cases = [
        "".to_string(),
        "abc".to_string(),
        "a.b".to_string(),
        format!("{}.{}.{}.x", parts[0], parts[1], parts[2]),
        format!("!!!.{}.{}", parts[1], parts[2]),
        format!("{}.%%%.{}", parts[0], parts[2]),
        format!("{}.{}.***", parts[0], parts[1]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{not_json}.{}.{}", parts[1], parts[2]),
        format!("{}.{not_json}.{}", parts[0], parts[2]),
        format!("{array}.{}.{}", parts[1], parts[2]),
        format!("{}.{array}.{}", parts[0], parts[2]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT"}"#),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","crit":["x"]}"#),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":7}"#),
            parts[1],
            parts[2]
        ),
    ];
    for token in &cases {
        assert_eq!(
            jwt::parse(token, 8192).unwrap_err(),
            JwtError::Malformed,
            "{token}"
        );
    }
    let unknown = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"XY999"}"#),
        parts[1],
        parts[2]
    );
    assert_eq!(
        jwt::parse(&unknown, 8192).unwrap_err(),
        JwtError::UnsupportedAlg
    );
}

#[test]
fn huge_tokens_are_rejected_before_decoding() {
    // Hundreds of kilobytes that are not even base64: the size check answers first.
    let huge = format!(
        "{}.{}.{}",
        "e".repeat(100_000),
        "!".repeat(200_000),
        "x".repeat(100_000)
    );
    // No timing assertion (it flaked under load and `Instant` panics on wasm32): a decoding attempt
    // would answer with a base64 error, not TooLarge.
    assert_eq!(
        jwt::parse(&huge, 8192).unwrap_err(),
        JwtError::TooLarge(8192)
    );
    // A real, validly signed token just over the limit is refused too.
    let mut c = claims();
    c["pad"] = json!("p".repeat(9000));
    let t = sign(Algorithm::RS256, &rsa(), &c, None);
    assert_eq!(
        check(&t, &rsa_cred(), &config(), NOW),
        Err(JwtError::TooLarge(8192))
    );
}

#[test]
fn credential_keys_are_checked() {
    // Private keys are never accepted as a credential's public key.
    assert!(matches!(
        jwt::credential_key(&cred(|c| c.public_key = Some(RSA_KEY.into()))),
        Err(JwtError::BadKey)
    ));
    // Exactly one kind of key.
    assert!(matches!(
        jwt::credential_key(&cred(|c| {
            c.public_key = Some(RSA_PUB.into());
            c.secret = Some("c2VjcmV0".into());
        })),
        Err(JwtError::BadKey)
    ));
    assert!(matches!(
        jwt::credential_key(&cred(|_| {})),
        Err(JwtError::BadKey)
    ));
    // A symmetric JWK is refused.
    let oct = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "x"});
    assert!(matches!(
        jwt::credential_key(&cred(|c| c.jwk = Some(oct))),
        Err(JwtError::BadKey)
    ));
    // So is a JWK its publisher meant for encryption, or for operations other than verify.
    let mut enc = rsa_jwk("e", RSA_PUB);
    enc["use"] = json!("enc");
    assert!(matches!(
        jwt::credential_key(&cred(|c| c.jwk = Some(enc))),
        Err(JwtError::BadKey)
    ));
    let mut ops = rsa_jwk("o", RSA_PUB);
    ops["key_ops"] = json!(["encrypt"]);
    assert!(matches!(
        jwt::credential_key(&cred(|c| c.jwk = Some(ops))),
        Err(JwtError::BadKey)
    ));
    assert!(jwt::credential_key(&cred(|c| c.jwk = Some(rsa_jwk("s", RSA_PUB)))).is_ok());
}

fn rsa_jwk(kid: &str, pem: &str) -> serde_json::Value {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPublicKey::from_public_key_pem(pem).unwrap();
    json!({
        "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    })
}

fn jwks(keys: &[serde_json::Value]) -> String {
    json!({ "keys": keys }).to_string()
}

#[test]
fn jwk_credential_verifies_and_pins_its_algorithm() {
    let jwk = rsa_jwk("k1", RSA_PUB);
    let c = cred(|c| c.jwk = Some(jwk.clone()));
    let t = sign(Algorithm::RS256, &rsa(), &claims(), Some("k1"));
    assert_eq!(check(&t, &c, &config(), NOW), Ok(()));
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
    let (key, pinned) = jwt::jwk_key(&parsed).unwrap();
    assert_eq!(pinned, Some(Algorithm::RS256));
    let ps = sign(Algorithm::PS256, &rsa(), &claims(), Some("k1"));
    let ps = jwt::parse(&ps, 8192).unwrap();
    assert_eq!(
        jwt::verify(&config(), &ps, &c, &key, pinned, NOW),
        Err(JwtError::AlgNotAllowed)
    );
}

const URL: &str = "https://idp.example/jwks.json";

#[test]
fn jwks_unknown_kid_refetches_at_most_once_per_interval() {
    let mut cache = JwksCache::new();
    let (cache_ms, refetch_ms) = (300_000.0, 30_000.0);
    let policy = jwks::Policy {
        cache_ms,
        refetch_ms,
        fetch_timeout_ms: 5_000.0,
    };
    let mut now = 1_000_000.0;
    assert_eq!(cache.plan(URL, Some("k1"), now, &policy), Plan::Fetch);
    cache
        .fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), now)
        .unwrap();
    assert!(matches!(
        cache.plan(URL, Some("k1"), now, &policy),
        Plan::Use(_)
    ));

    // A flood of unknown kids: the first one within the interval would fetch, but the initial fetch
    // just happened, so none does.
    now += 1_000.0;
    for i in 0..1000 {
        let kid = format!("bogus-{i}");
        assert_eq!(cache.plan(URL, Some(&kid), now, &policy), Plan::Unknown);
    }
    // After the interval exactly one fetch is allowed, then none again.
    now += refetch_ms;
    assert_eq!(cache.plan(URL, Some("bogus"), now, &policy), Plan::Fetch);
    cache
        .fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), now)
        .unwrap();
    for _ in 0..100 {
        assert_eq!(
            cache.plan(URL, Some("bogus"), now + 10.0, &policy),
            Plan::Unknown
        );
    }
    // The known key keeps working meanwhile.
    assert!(matches!(
        cache.plan(URL, Some("k1"), now + 10.0, &policy),
        Plan::Use(_)
    ));
}

#[test]
fn jwks_rotation_new_kid_after_refetch_removed_kid_after_expiry() {
    let mut cache = JwksCache::new();
    let (cache_ms, refetch_ms) = (60_000.0, 5_000.0);
    let policy = jwks::Policy {
        cache_ms,
        refetch_ms,
        fetch_timeout_ms: 5_000.0,
    };
    let mut now = 0.0;
    assert_eq!(cache.plan(URL, Some("k1"), now, &policy), Plan::Fetch);
    cache
        .fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), now)
        .unwrap();

    // The provider publishes k2 next to k1; a token with k2 triggers the refetch.
    now += 10_000.0;
    assert_eq!(cache.plan(URL, Some("k2"), now, &policy), Plan::Fetch);
    let both = jwks(&[
        rsa_jwk("k1", RSA_PUB),
        rsa_jwk("k2", include_str!("testdata/rsa2.pub")),
    ]);
    cache.fetched(URL, Ok(&both), now).unwrap();
    assert!(cache.lookup(URL, Some("k2")).is_some());
    assert!(matches!(
        cache.plan(URL, Some("k1"), now, &policy),
        Plan::Use(_)
    ));

    // The provider drops k1. Until the cached set expires k1 still verifies; then the set is fetched
    // again and k1 is gone.
    now += cache_ms;
    assert_eq!(cache.plan(URL, Some("k1"), now, &policy), Plan::Fetch);
    cache
        .fetched(
            URL,
            Ok(&jwks(&[rsa_jwk("k2", include_str!("testdata/rsa2.pub"))])),
            now,
        )
        .unwrap();
    assert_eq!(cache.lookup(URL, Some("k1")), None);
    assert_eq!(
        cache.plan(URL, Some("k1"), now + 1.0, &policy),
        Plan::Unknown
    );
}

#[test]
fn jwks_failed_refetch_keeps_cached_keys() {
    let mut cache = JwksCache::new();
    let (cache_ms, refetch_ms) = (60_000.0, 5_000.0);
    let policy = jwks::Policy {
        cache_ms,
        refetch_ms,
        fetch_timeout_ms: 5_000.0,
    };
    assert_eq!(cache.plan(URL, Some("k1"), 0.0, &policy), Plan::Fetch);
    cache
        .fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), 0.0)
        .unwrap();
    // Stale: fetch again, and the provider is down.
    assert_eq!(cache.plan(URL, Some("k1"), 70_000.0, &policy), Plan::Fetch);
    assert!(cache
        .fetched(URL, Err("connection refused".into()), 70_000.0)
        .is_err());
    assert!(cache.lookup(URL, Some("k1")).is_some());
    // Within the refetch interval the stale key is used without another attempt.
    assert!(matches!(
        cache.plan(URL, Some("k1"), 71_000.0, &policy),
        Plan::Use(_)
    ));
    // A garbage document is a failure too, and also keeps the keys.
    assert_eq!(cache.plan(URL, Some("k1"), 80_000.0, &policy), Plan::Fetch);
    assert!(cache.fetched(URL, Ok("<html>"), 80_000.0).is_err());
    assert!(cache.lookup(URL, Some("k1")).is_some());
}

fn policy(cache_ms: f64, refetch_ms: f64) -> jwks::Policy {
    jwks::Policy {
        cache_ms,
        refetch_ms,
        fetch_timeout_ms: 5_000.0,
    }
}

#[test]
fn jwks_cold_start_one_fetch_and_every_concurrent_request_waits_for_it() {
    let mut cache = JwksCache::new();
    let p = policy(300_000.0, 30_000.0);
    let t0 = 1_000_000.0;
    // 20 requests arrive while the first one's fetch is under way.
    let plans: Vec<Plan> = (0..20)
        .map(|i| cache.plan(URL, Some("k1"), t0 + i as f64, &p))
        .collect();
    assert_eq!(plans[0], Plan::Fetch);
    let deadline = t0 + p.fetch_timeout_ms + jwks::GRACE_MS;
    for plan in &plans[1..] {
        assert_eq!(*plan, Plan::Wait { deadline });
    }
    assert!(cache.in_flight(URL, t0 + 100.0, &p));
    // The fetch answers; every waiter is decided with its result.
    cache
        .fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), t0 + 300.0)
        .unwrap();
    assert!(!cache.in_flight(URL, t0 + 300.0, &p));
    for _ in &plans[1..] {
        assert!(cache.lookup(URL, Some("k1")).is_some());
    }
    assert!(matches!(
        cache.plan(URL, Some("k1"), t0 + 301.0, &p),
        Plan::Use(_)
    ));
    // A token without `kid` waits the same way and gets the set's only key.
    let mut cold = JwksCache::new();
    assert_eq!(cold.plan(URL, None, t0, &p), Plan::Fetch);
    assert!(matches!(cold.plan(URL, None, t0, &p), Plan::Wait { .. }));
    cold.fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), t0)
        .unwrap();
    assert!(cold.lookup(URL, None).is_some());
}

#[test]
fn jwks_rotation_new_kid_waits_for_the_one_refetch_known_kid_does_not() {
    let mut cache = JwksCache::new();
    let p = policy(300_000.0, 30_000.0);
    assert_eq!(cache.plan(URL, Some("k1"), 0.0, &p), Plan::Fetch);
    cache
        .fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), 0.0)
        .unwrap();
    // The provider publishes k2; after the refetch interval, 20 concurrent k2 tokens: one refetch,
    // nineteen waits; k1 tokens meanwhile are served from the cache without waiting.
    let t = 40_000.0;
    let mut fetches = 0;
    let mut waits = 0;
    for i in 0..20 {
        match cache.plan(URL, Some("k2"), t + i as f64, &p) {
            Plan::Fetch => fetches += 1,
            Plan::Wait { deadline } => {
                assert_eq!(deadline, t + p.fetch_timeout_ms + jwks::GRACE_MS);
                waits += 1;
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cache.plan(URL, Some("k1"), t + i as f64, &p),
            Plan::Use(_)
        ));
    }
    assert_eq!((fetches, waits), (1, 19));
    let both = jwks(&[
        rsa_jwk("k1", RSA_PUB),
        rsa_jwk("k2", include_str!("testdata/rsa2.pub")),
    ]);
    cache.fetched(URL, Ok(&both), t + 200.0).unwrap();
    assert!(cache.lookup(URL, Some("k2")).is_some());
    // A stale set whose refresh is under way keeps serving its keys; unknown kids wait.
    let stale = t + 200.0 + p.cache_ms;
    assert_eq!(cache.plan(URL, Some("k1"), stale, &p), Plan::Fetch);
    assert!(matches!(
        cache.plan(URL, Some("k2"), stale + 1.0, &p),
        Plan::Use(_)
    ));
    assert!(matches!(
        cache.plan(URL, Some("k3"), stale + 1.0, &p),
        Plan::Wait { .. }
    ));
}

#[test]
fn jwks_storm_of_random_kids_costs_one_fetch_per_interval_waiting_or_not() {
    let mut cache = JwksCache::new();
    let p = policy(300_000.0, 30_000.0);
    let fetch_ms = 400.0; // how long the provider takes to answer
    let mut fetches = 0;
    let mut in_flight_until: Option<f64> = None;
    let mut waits = 0;
    // One made-up kid every 10 ms for 10 simulated minutes, with the provider's answers arriving
    // `fetch_ms` after each fetch starts.
    let mut now = 0.0;
    let end = 600_000.0;
    let mut i = 0u64;
    while now < end {
        if let Some(at) = in_flight_until.filter(|at| *at <= now) {
            cache
                .fetched(URL, Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])), at)
                .unwrap();
            in_flight_until = None;
        }
        let kid = format!("random-{i}");
        match cache.plan(URL, Some(&kid), now, &p) {
            Plan::Fetch => {
                fetches += 1;
                assert!(
                    in_flight_until.is_none(),
                    "a second fetch while one is under way"
                );
                in_flight_until = Some(now + fetch_ms);
            }
            Plan::Wait { deadline } => {
                assert!(in_flight_until.is_some());
                assert!(deadline <= now + p.fetch_timeout_ms + jwks::GRACE_MS);
                waits += 1;
            }
            Plan::Unknown => assert!(in_flight_until.is_none()),
            Plan::Use(_) => panic!("a made-up kid found a key"),
        }
        now += 10.0;
        i += 1;
    }
    // The documented bound: at most one fetch per refetch interval (the first one included).
    let bound = (end / p.refetch_ms).ceil() as usize;
    assert!(fetches <= bound, "{fetches} fetches, bound {bound}");
    assert_eq!(fetches, bound);
    assert!(waits > 0);
    // Made-up kids never match after the fetch either.
    assert_eq!(cache.lookup(URL, Some("random-1")), None);
}

#[test]
fn jwks_a_fetch_that_never_reports_stops_being_waited_for_and_still_counts() {
    let mut cache = JwksCache::new();
    let p = policy(300_000.0, 30_000.0);
    assert_eq!(cache.plan(URL, Some("k1"), 0.0, &p), Plan::Fetch);
    let deadline = p.fetch_timeout_ms + jwks::GRACE_MS;
    assert_eq!(
        cache.plan(URL, Some("k1"), deadline - 1.0, &p),
        Plan::Wait { deadline }
    );
    // Past its timeout the fetch is over (its request went away); it was an attempt, so no new
    // fetch before the refetch interval.
    assert!(!cache.in_flight(URL, deadline, &p));
    assert_eq!(cache.plan(URL, Some("k1"), deadline, &p), Plan::Unknown);
    assert_eq!(cache.plan(URL, Some("k1"), p.refetch_ms, &p), Plan::Fetch);
    // A late answer of the abandoned fetch is still recorded.
    cache
        .fetched(
            URL,
            Ok(&jwks(&[rsa_jwk("k1", RSA_PUB)])),
            p.refetch_ms + 1.0,
        )
        .unwrap();
    assert!(matches!(
        cache.plan(URL, Some("k1"), p.refetch_ms + 2.0, &p),
        Plan::Use(_)
    ));
}

#[test]
fn jwks_a_failed_fetch_ends_the_wait_and_decides_with_what_is_cached() {
    let mut cache = JwksCache::new();
    let p = policy(300_000.0, 30_000.0);
    assert_eq!(cache.plan(URL, Some("k1"), 0.0, &p), Plan::Fetch);
    assert!(matches!(
        cache.plan(URL, Some("k1"), 1.0, &p),
        Plan::Wait { .. }
    ));
    assert!(cache.fetched(URL, Err("status 503".into()), 100.0).is_err());
    assert!(!cache.in_flight(URL, 100.0, &p));
    assert_eq!(cache.lookup(URL, Some("k1")), None);
    // No second fetch within the interval: the waiters' answer is "unknown key".
    assert_eq!(cache.plan(URL, Some("k1"), 200.0, &p), Plan::Unknown);
}

#[test]
fn jwks_skips_symmetric_and_unknown_keys() {
    let doc = jwks(&[
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}),
        json!({"kty": "weird", "kid": "w"}),
        rsa_jwk("k1", RSA_PUB),
    ]);
    let keys = jwks::parse_jwks(&doc).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(jwks::parse_jwks(&"x".repeat(jwks::MAX_JWKS_BYTES + 1)).is_err());
}

#[test]
fn jwks_skips_keys_restricted_to_other_uses() {
    let with = |kid: &str, extra: serde_json::Value| {
        let mut k = rsa_jwk(kid, RSA_PUB);
        for (name, v) in extra.as_object().unwrap() {
            k[name] = v.clone();
        }
        k
    };
    let doc = jwks(&[
        with("enc", json!({"use": "enc"})),
        with("other-use", json!({"use": "tls"})),
        with("wrap", json!({"key_ops": ["wrapKey", "encrypt"]})),
        with("no-ops", json!({"key_ops": []})),
        with("sig", json!({"use": "sig"})),
        with("verify", json!({"key_ops": ["verify"]})),
        with("both", json!({"use": "sig", "key_ops": ["sign", "verify"]})),
        rsa_jwk("plain", RSA_PUB),
    ]);
    let keys = jwks::parse_jwks(&doc).unwrap();
    let kids: Vec<_> = keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids, ["sig", "verify", "both", "plain"]);
}

#[test]
fn key_digest_differs_for_a_key_one_character_off() {
    let key = keyauth::generate_key(&[7u8; 32]);
    assert!(key.starts_with("eg_") && key.len() == 46, "{key}");
    let mut off = key.clone().into_bytes();
    let last = off.len() - 1;
    off[last] = if off[last] == b'A' { b'B' } else { b'A' };
    let off = String::from_utf8(off).unwrap();
    assert_ne!(keyauth::lookup_key(&key), keyauth::lookup_key(&off));
    assert_eq!(
        keyauth::lookup_key("abc"),
        "credentials/key-auth/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        keyauth::credential_id(&keyauth::digest("abc")),
        "ba7816bf8f01cfea"
    );
    assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab"));
}

#[test]
fn cache_serves_hits_and_misses_until_ttl_then_forgets() {
    let mut cache: cache::TtlCache<Option<String>> = cache::TtlCache::new(3);
    cache.insert("k".into(), Some("valid".into()), 0.0, 1000.0);
    cache.insert("miss".into(), None, 0.0, 1000.0);
    assert_eq!(cache.get("k", 999.0), Some(Some("valid".into())));
    assert_eq!(cache.get("miss", 999.0), Some(None));
    // After revocation in KV the isolate still answers from cache until the TTL, then re-reads.
    assert_eq!(cache.get("k", 1000.0), None);
    // Bounded: a flood of distinct keys never holds more than the capacity.
    for i in 0..100 {
        cache.insert(format!("flood-{i}"), None, 2000.0, 1000.0);
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.get("flood-99", 2000.0), Some(None));
    assert_eq!(cache.get("flood-0", 2000.0), None);
}

#[test]
fn key_is_found_in_headers_bearer_query_and_body() {
    let cfg: KeyAuthConfig = crate::plugins::settings(&json!({"key_in_body": true})).unwrap();
    let none = |_: &str| None;
    let header = |n: &str| (n == "x-api-key").then(|| "k1".to_string());
    assert_eq!(
        keyauth::find_key(&cfg, &header, None, None),
        Some(("k1".into(), keyauth::KeySource::Header("x-api-key".into())))
    );
    let bearer = |n: &str| (n == "authorization").then(|| "Bearer k2".to_string());
    assert_eq!(
        keyauth::find_key(&cfg, &bearer, None, None),
        Some(("k2".into(), keyauth::KeySource::Bearer))
    );
    assert_eq!(
        keyauth::find_key(&cfg, &none, Some("a=1&apikey=k%2B3"), None),
        Some(("k+3".into(), keyauth::KeySource::Query("apikey".into())))
    );
    let body = keyauth::body_fields("application/x-www-form-urlencoded", "apikey=k4&x=1").unwrap();
    assert_eq!(
        keyauth::find_key(&cfg, &none, None, Some(&body)),
        Some(("k4".into(), keyauth::KeySource::Body("apikey".into())))
    );
    let body =
        keyauth::body_fields("application/json; charset=utf-8", r#"{"apikey":"k5"}"#).unwrap();
    assert_eq!(
        keyauth::find_key(&cfg, &none, None, Some(&body)).unwrap().0,
        "k5"
    );
    assert_eq!(keyauth::find_key(&cfg, &none, Some("apikey="), None), None);
    // A parameter repeated with different values is never a key; the same value repeated is it.
    assert_eq!(
        keyauth::find_key(&cfg, &none, Some("apikey=k1&apikey=k2"), None)
            .unwrap()
            .0,
        "k1, k2"
    );
    assert_eq!(
        keyauth::find_key(&cfg, &none, Some("apikey=k1&b=2&apikey=k1&apikey="), None)
            .unwrap()
            .0,
        "k1"
    );
    let basic = |n: &str| (n == "authorization").then(|| "Basic eDp5".to_string());
    assert_eq!(keyauth::find_key(&cfg, &basic, None, None), None);
}

#[test]
fn token_is_found_in_header_query_and_cookie_and_hidden() {
    let mut cfg = config();
    cfg.cookie_names = vec!["session".into()];
    let h = |n: &str| (n == "cookie").then(|| "a=1; session=tok; b=2".to_string());
    assert_eq!(
        jwt::find_token(&cfg, &h, None),
        Some(("tok".into(), jwt::TokenSource::Cookie("session".into())))
    );
    assert_eq!(
        jwt::remove_cookie("a=1; session=tok; b=2", "session").as_deref(),
        Some("a=1; b=2")
    );
    assert_eq!(jwt::remove_cookie("session=tok", "session"), None);
    let none = |_: &str| None;
    assert_eq!(
        jwt::find_token(&cfg, &none, Some("jwt=t.o.k")).unwrap().0,
        "t.o.k"
    );
    assert_eq!(
        remove_query_param("http://o/p?a=1&jwt=t.o.k&b=2", "jwt"),
        "http://o/p?a=1&b=2"
    );
    assert_eq!(
        remove_query_param("http://o/p?apikey=x", "apikey"),
        "http://o/p"
    );
    assert_eq!(remove_query_param("http://o/p", "apikey"), "http://o/p");
}

#[test]
fn identity_headers_and_the_forgeable_list() {
    let consumer = records::Consumer {
        id: "c1".into(),
        username: "alice".into(),
        custom_id: Some("ext-9".into()),
        groups: vec!["admin".into(), "dev".into()],
        metadata: Default::default(),
        created_at: 0,
    };
    let id = consumer.identity(Some("cred-1"), false);
    let headers = identity_headers(&id, false);
    assert_eq!(
        headers,
        vec![
            ("x-consumer-id".to_string(), "c1".to_string()),
            ("x-consumer-username".into(), "alice".into()),
            ("x-consumer-custom-id".into(), "ext-9".into()),
            ("x-credential-identifier".into(), "cred-1".into()),
            ("x-consumer-groups".into(), "admin, dev".into()),
        ]
    );
    assert!(!identity_headers(&id, true)
        .iter()
        .any(|(n, _)| n == "x-consumer-groups"));
    let anon = consumer.identity(None, true);
    assert!(
        identity_headers(&anon, false).contains(&("x-anonymous-consumer".into(), "true".into()))
    );
    // Every header we may set is in the list stripped from client requests.
    for (name, _) in identity_headers(&id, false)
        .iter()
        .chain(identity_headers(&anon, false).iter())
    {
        assert!(IDENTITY_HEADERS.contains(&name.as_str()), "{name}");
    }
}

#[test]
fn basic_auth_hash_and_verify() {
    let stored = basic::hash_password("s3cret", b"0123456789abcdef", basic::DEFAULT_ITERATIONS);
    assert!(stored.starts_with("$pbkdf2-sha256$i=10000$"), "{stored}");
    assert_eq!(basic::verify_password("s3cret", &stored), Ok(true));
    assert_eq!(basic::verify_password("s3cres", &stored), Ok(false));
    assert_eq!(basic::verify_password("", &stored), Ok(false));
    // A hash claiming a huge cost is refused rather than run.
    let costly = stored.replace("i=10000", "i=100000000");
    assert!(basic::verify_password("s3cret", &costly).is_err());
    assert!(basic::verify_password("s3cret", "plaintext").is_err());

    let header = format!("Basic {}", STANDARD.encode("bob:pa:ss"));
    assert_eq!(
        basic::parse_authorization(Some(&header)),
        basic::Parsed::Credentials {
            username: "bob".into(),
            password: "pa:ss".into()
        }
    );
    assert_eq!(basic::parse_authorization(None), basic::Parsed::Absent);
    assert_eq!(
        basic::parse_authorization(Some("Bearer x")),
        basic::Parsed::Absent
    );
    assert_eq!(
        basic::parse_authorization(Some("Basic !!!")),
        basic::Parsed::Malformed
    );
    let no_colon = format!("Basic {}", STANDARD.encode("bob"));
    assert_eq!(
        basic::parse_authorization(Some(&no_colon)),
        basic::Parsed::Malformed
    );
}

#[test]
fn kong_admin_api_nulls_take_the_defaults() {
    // Kong's Admin API shows unset settings as null; such a configuration loads as it is.
    let key: KeyAuthConfig = super::settings(&json!({"realm": null, "anonymous": null}))
        .and_then(KeyAuthConfig::validate)
        .unwrap();
    assert_eq!(key.realm, "edgegate");
    assert_eq!(key.key_names, ["apikey", "x-api-key"]);
    let jwt: JwtConfig = super::settings(&json!({"claims_to_verify": null, "realm": null}))
        .and_then(JwtConfig::validate)
        .unwrap();
    assert_eq!(jwt.claims_to_verify, ["exp"]);
    let acl: AclConfig = super::settings(&json!({
        "allow": ["a"], "deny": null, "always_use_authenticated_groups": false
    }))
    .and_then(AclConfig::validate)
    .unwrap();
    assert_eq!(acl.allow, ["a"]);
    let hmac: HmacAuthConfig = super::settings(&json!({
        "clock_skew": null, "algorithms": null, "enforce_headers": null, "realm": null
    }))
    .and_then(HmacAuthConfig::validate)
    .unwrap();
    assert_eq!(hmac.clock_skew, 300.0);
    assert_eq!(hmac.algorithms.len(), 4);
    // Anything else keeps its type errors and paths.
    let Err(crate::plugins::PluginError::Config(e)) =
        super::settings::<KeyAuthConfig>(&json!({"realm": 5, "anonymous": null}))
    else {
        panic!("a number realm was accepted");
    };
    assert_eq!(e[0].0, "realm");
}

#[test]
fn acl_allows_and_denies_groups() {
    let allow: AclConfig = crate::plugins::settings::<AclConfig>(&json!({"allow": ["admin"]}))
        .unwrap()
        .validate()
        .unwrap();
    let deny = AclConfig {
        allow: vec![],
        deny: vec!["banned".into()],
        hide_groups_header: false,
        always_use_authenticated_groups: false,
    };
    let mut id = crate::identity::Identity {
        username: "u".into(),
        ..Default::default()
    };
    assert_eq!(allow.check(Some(&id)).unwrap_err().status(), 403);
    assert_eq!(allow.check(Some(&id)).unwrap_err().kind.code(), "forbidden");
    assert!(deny.check(Some(&id)).is_ok());
    id.groups = vec!["admin".into(), "banned".into()];
    assert!(allow.check(Some(&id)).is_ok());
    assert_eq!(deny.check(Some(&id)).unwrap_err().status(), 403);
    assert_eq!(allow.check(None).unwrap_err().status(), 401);
    // The anonymous consumer: without groups, 401 on an allow list (as Kong); with others, 403.
    let mut anon = crate::identity::Identity {
        username: "anon".into(),
        anonymous: true,
        ..Default::default()
    };
    assert_eq!(allow.check(Some(&anon)).unwrap_err().status(), 401);
    assert!(deny.check(Some(&anon)).is_ok());
    anon.groups = vec!["guest".into()];
    assert_eq!(allow.check(Some(&anon)).unwrap_err().status(), 403);
    assert!(crate::plugins::settings::<AclConfig>(&json!({}))
        .unwrap()
        .validate()
        .is_err());
}

#[test]
fn errors_are_401_with_challenge_or_403() {
    let e = unauthorized(AuthFailure::CredentialsRevoked, "Key realm=\"edgegate\"");
    assert_eq!(e.status(), 401);
    assert_eq!(e.kind.code(), "credentials_revoked");
    assert_eq!(
        e.headers(),
        vec![("www-authenticate", "Key realm=\"edgegate\"".to_string())]
    );
    let v: serde_json::Value = serde_json::from_str(&e.problem_json("r")).unwrap();
    assert_eq!(v["code"], "credentials_revoked");
    assert_eq!(v["status"], 401);
    assert_eq!(forbidden().status(), 403);
}

#[test]
fn every_401_of_the_phase_carries_one_challenge_per_auth_plugin() {
    let key: KeyAuthConfig = crate::plugins::settings(&json!({})).unwrap();
    let jwt_cfg = config();
    let basic: BasicAuthConfig = crate::plugins::settings(&json!({"realm": "admin"})).unwrap();
    let header = |e: &GatewayError| e.headers()[0].1.clone();
    let all_plain = format!(
        "{}, {}, {}",
        key.challenge(),
        jwt_cfg.challenge(),
        basic.challenge()
    );
    assert_eq!(
        all_plain,
        "Key realm=\"edgegate\", Bearer realm=\"edgegate\", Basic realm=\"admin\", charset=\"UTF-8\""
    );

    // Nothing sent.
    let mut v = Challenges::new();
    v.missing(key.challenge());
    v.missing(jwt_cfg.challenge());
    v.missing(basic.challenge());
    assert!(!v.has_failure());
    let e = v.into_error();
    assert_eq!(e.kind.code(), "missing_credentials");
    assert_eq!(header(&e), all_plain);

    // A wrong key: key-auth fails, the others find nothing; all three challenges.
    let mut v = Challenges::new();
    v.failed(unauthorized(
        AuthFailure::InvalidCredentials,
        key.challenge(),
    ));
    v.missing(jwt_cfg.challenge());
    v.missing(basic.challenge());
    let e = v.into_error();
    assert_eq!(e.kind.code(), "invalid_credentials");
    assert_eq!(header(&e), all_plain);

    // An expired token: Bearer carries RFC 6750's error; the most specific failure is reported.
    let mut v = Challenges::new();
    v.missing(key.challenge());
    v.failed(unauthorized_with(
        AuthFailure::TokenExpired,
        jwt_cfg.challenge_invalid(),
        "the token has expired",
    ));
    v.missing(basic.challenge());
    let e = v.into_error();
    assert_eq!(e.kind.code(), "token_expired");
    assert_eq!(e.detail, "the token has expired");
    assert_eq!(
        header(&e),
        format!(
            "{}, Bearer realm=\"edgegate\", error=\"invalid_token\", {}",
            key.challenge(),
            basic.challenge()
        )
    );

    // Two failures: the more specific one wins whatever the order; the first wins a tie.
    let mut v = Challenges::new();
    v.failed(unauthorized(
        AuthFailure::InvalidCredentials,
        key.challenge(),
    ));
    v.failed(unauthorized(
        AuthFailure::CredentialsRevoked,
        jwt_cfg.challenge_invalid(),
    ));
    v.failed(unauthorized_with(
        AuthFailure::InvalidCredentials,
        basic.challenge(),
        "second",
    ));
    let e = v.into_error();
    assert_eq!(e.kind.code(), "credentials_revoked");
    assert_eq!(header(&e).matches("realm=").count(), 3);
    let mut v = Challenges::new();
    v.failed(unauthorized_with(
        AuthFailure::InvalidCredentials,
        key.challenge(),
        "first",
    ));
    v.failed(unauthorized_with(
        AuthFailure::InvalidCredentials,
        basic.challenge(),
        "second",
    ));
    assert_eq!(v.into_error().detail, "first");
}

#[test]
fn plugin_configs_validate_with_paths() {
    use crate::plugins::{parse, PluginError};
    assert!(parse("key-auth", &serde_json::Value::Null).is_ok());
    assert!(parse("jwt", &json!({"claims_to_verify": ["exp", "nbf"]})).is_ok());
    assert!(parse("basic-auth", &json!({"hide_credentials": true})).is_ok());
    let Err(PluginError::Config(errors)) = parse("jwt", &json!({"claims_to_verify": ["iat"]}))
    else {
        panic!()
    };
    assert_eq!(errors[0].0, "claims_to_verify[0]");
    let Err(PluginError::Config(errors)) = parse("key-auth", &json!({"key_nmes": []})) else {
        panic!()
    };
    assert!(errors[0].1.contains("unknown field"), "{errors:?}");
    assert!(matches!(
        parse("acl", &json!({"allow": ["a"], "deny": ["b"]})),
        Err(PluginError::Config(_))
    ));
}

#[test]
fn a_realm_that_would_break_the_challenge_is_refused() {
    use crate::plugins::{parse, PluginError};
    for plugin in ["key-auth", "jwt", "basic-auth"] {
        assert!(
            parse(plugin, &json!({"realm": "shop · Käse"})).is_ok(),
            "{plugin}"
        );
        assert!(parse(plugin, &json!({"realm": ""})).is_ok(), "{plugin}");
        for realm in [
            "x\", error=\"y",
            "a\\b",
            "a\r\nSet-Cookie: x=1",
            "tab\there",
        ] {
            let Err(PluginError::Config(errors)) = parse(plugin, &json!({ "realm": realm })) else {
                panic!("{plugin}: {realm:?} accepted")
            };
            assert_eq!(errors[0].0, "realm", "{plugin}");
        }
    }
}

#[test]
fn key_claim_is_looked_for_in_the_payload_then_the_header_as_in_kong() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let key = EncodingKey::from_secret(secret);
    let t = sign(
        Algorithm::HS256,
        &key,
        &json!({"exp": NOW + 60}),
        Some("kid-a"),
    );
    let parsed = jwt::parse(&t, 8192).unwrap();
    assert_eq!(parsed.key_claim("kid").unwrap(), "kid-a");
    assert_eq!(
        parsed.key_claim("iss"),
        Err(JwtError::MissingClaim("iss".into()))
    );
    let t = sign(
        Algorithm::HS256,
        &key,
        &json!({"kid": "from-payload", "exp": NOW + 60}),
        Some("kid-a"),
    );
    assert_eq!(
        jwt::parse(&t, 8192).unwrap().key_claim("kid").unwrap(),
        "from-payload"
    );
}

#[test]
fn kongs_secret_is_base64_is_accepted() {
    let c = crate::plugins::settings::<JwtConfig>(&json!({"secret_is_base64": false}))
        .unwrap()
        .validate();
    assert!(c.is_ok());
}

#[test]
fn key_auth_errors_never_quote_a_bad_key_name() {
    let cfg: KeyAuthConfig =
        crate::plugins::settings(&json!({"key_names": ["apikey: sk-SECRET"]})).unwrap();
    let e = match cfg.validate() {
        Err(crate::plugins::PluginError::Config(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e[0].0, "key_names[0]");
    assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
    assert!(e[0].1.starts_with("not a valid header or parameter name"));
}
