//! Consumers and credentials in KV (layout: `edgegate_core::auth::records`):
//! `consumer add|remove|list`, `key create|revoke|list`, `basic-auth add|remove`, `jwt add|remove`,
//! `hmac add|remove`.
//! The flows run over any [`Kv`], so they are tested natively with `MemoryKv`.

use crate::commands::CliError;
use crate::kv::Kv;
use crate::Target;
use edgegate_core::auth::records::{self, Kind};
use edgegate_core::auth::{basic, jwt, keyauth};
use std::path::PathBuf;

pub const USAGE: &str = "\
identity commands (all take --local|--remote [--persist-to DIR]):
  consumer add USERNAME [--id ID] [--custom-id X] [--group G]... [--meta KEY=VALUE]...
  consumer remove USERNAME|ID    delete the consumer, its credentials (keys are marked revoked)
  consumer list
  key create USERNAME|ID         print a new API key once; only its SHA-256 digest is stored
  key revoke CREDENTIAL-ID | --key KEY
  key list USERNAME|ID
  basic-auth add USERNAME|ID LOGIN (--password P | --password-stdin) [--iterations N]
  basic-auth remove LOGIN
  jwt add USERNAME|ID --key CLAIM-VALUE (--secret B64 | --generate-secret | --public-key PEM-FILE |
          --jwk JSON-FILE | --jwks-url URL) [--algorithm ALG]...
  jwt remove CLAIM-VALUE
  hmac add USERNAME|ID HMAC-USERNAME (--secret S | --secret-stdin | --generate-secret)
  hmac remove HMAC-USERNAME
  credentials list USERNAME|ID   every credential of a consumer
";

const GROUPS: &[&str] = &[
    "consumer",
    "key",
    "basic-auth",
    "jwt",
    "hmac",
    "credentials",
];

/// `Some(result)` when `args` is an identity command.
pub fn dispatch(args: &[String]) -> Option<Result<String, CliError>> {
    let group = args.first()?;
    if !GROUPS.contains(&group.as_str()) {
        return None;
    }
    // `key --help`, `consumer add -h`...: the identity commands' usage, exit 0, no KV needed.
    if args[1..].iter().any(|a| a == "-h" || a == "--help") {
        return Some(Ok(USAGE.to_string()));
    }
    Some(parse(args).and_then(|(cmd, target)| {
        let mut kv = crate::open_kv(target.clone())?;
        // Every command but the lists reads, then writes: with --local, under push's lock, so that
        // concurrent runs on one local state run one after the other (two `consumer add` of one
        // username: the second is refused instead of both writing).
        let _lock = match cmd.action.as_str() {
            "list" => None,
            _ => crate::lock_local(&target)?,
        };
        let mut stdin = || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut s)
                .map_err(|e| CliError::Failed(format!("cannot read stdin: {e}")))?;
            Ok(s.trim_end_matches(['\r', '\n']).to_string())
        };
        run(&mut kv, cmd, now(), &mut random, &mut stdin)
    }))
}

/// Longest hmac-auth secret `hmac add` stores.
const MAX_HMAC_SECRET_BYTES: usize = 1024;

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(format!("{}\n\n{}", message.into(), USAGE.trim_end()))
}

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    id: Option<String>,
    custom_id: Option<String>,
    groups: Vec<String>,
    meta: Vec<(String, String)>,
    key: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    iterations: Option<u32>,
    secret: Option<String>,
    secret_stdin: bool,
    generate_secret: bool,
    public_key: Option<PathBuf>,
    jwk: Option<PathBuf>,
    jwks_url: Option<String>,
    algorithms: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct Cmd {
    group: String,
    action: String,
    positional: Vec<String>,
    opts: Options,
}

fn parse(args: &[String]) -> Result<(Cmd, Target), CliError> {
    let group = args[0].clone();
    let action = args
        .get(1)
        .cloned()
        .ok_or_else(|| usage(format!("{group} needs an action")))?;
    let mut positional = Vec::new();
    let mut opts = Options::default();
    let (mut local, mut remote, mut persist_to) = (false, false, None);
    let mut it = args[2..].iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = crate::split_flag(arg);
        let mut value = |name: &str| crate::flag_value(&inline, &mut it, name).map_err(usage);
        match flag {
            "--local" => local = true,
            "--remote" => remote = true,
            "--persist-to" => persist_to = Some(PathBuf::from(value(flag)?)),
            "--id" => opts.id = Some(value(flag)?),
            "--custom-id" => opts.custom_id = Some(value(flag)?),
            "--group" => opts.groups.push(value(flag)?),
            "--meta" => {
                let v = value(flag)?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| usage("--meta takes KEY=VALUE"))?;
                opts.meta.push((k.to_string(), val.to_string()));
            }
            "--key" => opts.key = Some(value(flag)?),
            "--password" => opts.password = Some(value(flag)?),
            "--password-stdin" => opts.password_stdin = true,
            "--iterations" => {
                let v = value(flag)?;
                opts.iterations = Some(
                    v.parse()
                        .ok()
                        .filter(|n| (basic::MIN_ITERATIONS..=basic::MAX_ITERATIONS).contains(n))
                        .ok_or_else(|| {
                            usage(format!(
                                "--iterations must be {} to {}",
                                basic::MIN_ITERATIONS,
                                basic::MAX_ITERATIONS
                            ))
                        })?,
                );
            }
            "--secret" => opts.secret = Some(value(flag)?),
            "--generate-secret" => opts.generate_secret = true,
            "--secret-stdin" => opts.secret_stdin = true,
            "--public-key" => opts.public_key = Some(PathBuf::from(value(flag)?)),
            "--jwk" => opts.jwk = Some(PathBuf::from(value(flag)?)),
            "--jwks-url" => opts.jwks_url = Some(value(flag)?),
            "--algorithm" => opts.algorithms.push(value(flag)?),
            f if f.starts_with('-') => return Err(usage(format!("unknown option {f}"))),
            _ => positional.push(arg.clone()),
        }
    }
    let target = match (local, remote) {
        (true, true) => return Err(usage("--local and --remote exclude each other")),
        (false, false) => return Err(usage(format!("{group} {action} needs --local or --remote"))),
        (_, remote) => {
            if remote && persist_to.is_some() {
                return Err(usage("--persist-to only applies to --local"));
            }
            Target { remote, persist_to }
        }
    };
    Ok((
        Cmd {
            group,
            action,
            positional,
            opts,
        },
        target,
    ))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Secrets come from the operating system's generator.
fn random(out: &mut [u8]) -> Result<(), CliError> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(out))
        .map_err(|e| CliError::Failed(format!("cannot read /dev/urandom: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    edgegate_core::auth::hex(bytes)
}

fn get_json<T: serde::de::DeserializeOwned>(
    kv: &mut dyn Kv,
    key: &str,
) -> Result<Option<T>, CliError> {
    match kv.get(key)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CliError::Failed(format!("{key} holds an invalid record: {e}"))),
    }
}

fn put_json<T: serde::Serialize>(kv: &mut dyn Kv, key: &str, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string(value).map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(kv.put(key, &text)?)
}

/// A consumer named by username or id.
fn find_consumer(kv: &mut dyn Kv, reference: &str) -> Result<records::Consumer, CliError> {
    if let Some(index) = get_json::<records::NameIndex>(kv, &records::consumer_name_key(reference))?
    {
        if let Some(c) = get_json(kv, &records::consumer_key(&index.id))? {
            return Ok(c);
        }
    }
    get_json(kv, &records::consumer_key(reference))?
        .ok_or_else(|| CliError::Failed(format!("no consumer {reference:?}")))
}

fn one(cmd: &Cmd, what: &str) -> Result<String, CliError> {
    match cmd.positional.as_slice() {
        [x] => Ok(x.clone()),
        _ => Err(usage(format!("{} {} takes {what}", cmd.group, cmd.action))),
    }
}

fn check(what: &str, value: &str) -> Result<(), CliError> {
    records::check_name(what, value).map_err(CliError::Failed)
}

pub fn run(
    kv: &mut dyn Kv,
    cmd: Cmd,
    now: u64,
    random: &mut dyn FnMut(&mut [u8]) -> Result<(), CliError>,
    stdin: &mut dyn FnMut() -> Result<String, CliError>,
) -> Result<String, CliError> {
    match (cmd.group.as_str(), cmd.action.as_str()) {
        ("consumer", "add") => {
            let username = one(&cmd, "a USERNAME")?;
            check("username", &username)?;
            if kv.get(&records::consumer_name_key(&username))?.is_some() {
                return Err(CliError::Failed(format!("consumer {username:?} exists")));
            }
            let id = match &cmd.opts.id {
                Some(id) => id.clone(),
                None => {
                    let mut b = [0u8; 16];
                    random(&mut b)?;
                    hex(&b)
                }
            };
            check("consumer id", &id)?;
            if kv.get(&records::consumer_key(&id))?.is_some() {
                return Err(CliError::Failed(format!("consumer id {id:?} is taken")));
            }
            let consumer = records::Consumer {
                id: id.clone(),
                username: username.clone(),
                custom_id: cmd.opts.custom_id.clone(),
                groups: cmd.opts.groups.clone(),
                metadata: cmd
                    .opts
                    .meta
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
                created_at: now,
            };
            put_json(kv, &records::consumer_key(&id), &consumer)?;
            put_json(
                kv,
                &records::consumer_name_key(&username),
                &records::NameIndex { id: id.clone() },
            )?;
            Ok(format!("consumer {username} added (id {id})"))
        }
        ("consumer", "remove") => {
            let c = find_consumer(kv, &one(&cmd, "a USERNAME or ID")?)?;
            let mut removed = 0;
            for index in kv.list(&records::index_prefix(&c.id, None))? {
                if let Some(cred_key) = kv.get(&index)? {
                    revoke_or_delete(kv, &cred_key, now)?;
                    removed += 1;
                }
                kv.delete(&index)?;
            }
            kv.delete(&records::consumer_name_key(&c.username))?;
            kv.delete(&records::consumer_key(&c.id))?;
            Ok(format!(
                "consumer {} removed with {removed} credentials",
                c.username
            ))
        }
        ("consumer", "list") => {
            let mut lines = Vec::new();
            for key in kv.list(records::CONSUMERS_PREFIX)? {
                if let Some(c) = get_json::<records::Consumer>(kv, &key)? {
                    lines.push(format!(
                        "{}\t{}\t{}\t{}",
                        c.id,
                        c.username,
                        c.custom_id.unwrap_or_default(),
                        c.groups.join(",")
                    ));
                }
            }
            Ok(if lines.is_empty() {
                "no consumers".into()
            } else {
                format!("id\tusername\tcustom_id\tgroups\n{}", lines.join("\n"))
            })
        }
        ("key", "create") => {
            let c = find_consumer(kv, &one(&cmd, "a USERNAME or ID")?)?;
            let key = match &cmd.opts.key {
                Some(k) => k.clone(),
                None => {
                    let mut b = [0u8; 32];
                    random(&mut b)?;
                    keyauth::generate_key(&b)
                }
            };
            if key.len() < 16 || key.len() > keyauth::MAX_KEY_BYTES {
                return Err(CliError::Failed(format!(
                    "a key must be 16 to {} characters",
                    keyauth::MAX_KEY_BYTES
                )));
            }
            let digest = keyauth::digest(&key);
            let id = keyauth::credential_id(&digest);
            let cred_key = Kind::KeyAuth.key(&digest);
            if kv.get(&cred_key)?.is_some() {
                return Err(CliError::Failed("that key is already registered".into()));
            }
            let cred = records::KeyAuthCredential {
                id: id.clone(),
                consumer_id: c.id.clone(),
                created_at: now,
                revoked_at: None,
                expires_at: None,
            };
            put_json(kv, &cred_key, &cred)?;
            kv.put(&records::index_key(&c.id, Kind::KeyAuth, &id), &cred_key)?;
            Ok(format!(
                "{key}\n(key {id} for consumer {}: shown once, only its SHA-256 digest is stored)",
                c.username
            ))
        }
        ("key", "revoke") => {
            let cred_key = match (&cmd.opts.key, cmd.positional.as_slice()) {
                (Some(k), []) => keyauth::lookup_key(k),
                (None, [id]) => {
                    if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                        // Not echoed: it may be the key itself, given without --key.
                        return Err(CliError::Failed(
                            "that is not a key id (8 or more hex digits, as `key list` shows); \
                             to revoke by the key itself, give it with --key"
                                .into(),
                        ));
                    }
                    let matches = kv.list(&Kind::KeyAuth.key(&id.to_ascii_lowercase()))?;
                    match matches.as_slice() {
                        [one] => one.clone(),
                        [] => return Err(CliError::Failed("no key with that id".into())),
                        _ => return Err(CliError::Failed(format!("{id} matches several keys"))),
                    }
                }
                _ => return Err(usage("key revoke takes a CREDENTIAL-ID or --key KEY")),
            };
            let mut cred: records::KeyAuthCredential =
                get_json(kv, &cred_key)?.ok_or_else(|| CliError::Failed("no such key".into()))?;
            if cred.revoked_at.is_some() {
                return Ok(format!("key {} was already revoked", cred.id));
            }
            cred.revoked_at = Some(now);
            put_json(kv, &cred_key, &cred)?;
            Ok(format!(
                "key {} revoked (gateways stop accepting it within their AUTH_CACHE_SECONDS)",
                cred.id
            ))
        }
        ("key", "list") | ("credentials", "list") => {
            let c = find_consumer(kv, &one(&cmd, "a USERNAME or ID")?)?;
            let kind = (cmd.group == "key").then_some(Kind::KeyAuth);
            let mut lines = Vec::new();
            for index in kv.list(&records::index_prefix(&c.id, kind))? {
                let rest = index.trim_start_matches(&records::index_prefix(&c.id, None));
                let Some(cred_key) = kv.get(&index)? else {
                    continue;
                };
                let revoked = cred_key.starts_with(&Kind::KeyAuth.prefix())
                    && matches!(
                        get_json::<records::KeyAuthCredential>(kv, &cred_key),
                        Ok(Some(k)) if k.revoked_at.is_some()
                    );
                let status = if revoked { "revoked" } else { "active" };
                lines.push(format!("{rest}\t{status}"));
            }
            Ok(if lines.is_empty() {
                format!("consumer {} has no credentials of that kind", c.username)
            } else {
                lines.join("\n")
            })
        }
        ("basic-auth", "add") => {
            let [consumer, login] = cmd.positional.as_slice() else {
                return Err(usage("basic-auth add takes USERNAME|ID and LOGIN"));
            };
            let c = find_consumer(kv, consumer)?;
            check("login", login)?;
            let password = match (&cmd.opts.password, cmd.opts.password_stdin) {
                (Some(p), false) => p.clone(),
                (None, true) => stdin()?,
                _ => return Err(usage("give --password P or --password-stdin")),
            };
            if password.is_empty() {
                return Err(CliError::Failed("the password is empty".into()));
            }
            let key = Kind::BasicAuth.key(login);
            if kv.get(&key)?.is_some() {
                return Err(CliError::Failed(format!("login {login:?} exists")));
            }
            let mut salt = [0u8; 16];
            random(&mut salt)?;
            let iterations = cmd.opts.iterations.unwrap_or(basic::DEFAULT_ITERATIONS);
            let id = format!("basic-{}", &hex(&salt)[..12]);
            let cred = records::BasicAuthCredential {
                id: id.clone(),
                consumer_id: c.id.clone(),
                username: login.clone(),
                password_hash: basic::hash_password(&password, &salt, iterations),
                created_at: now,
            };
            put_json(kv, &key, &cred)?;
            kv.put(&records::index_key(&c.id, Kind::BasicAuth, &id), &key)?;
            Ok(format!(
                "basic-auth login {login} added for consumer {} ({id})",
                c.username
            ))
        }
        ("basic-auth", "remove") => {
            let login = one(&cmd, "a LOGIN")?;
            let key = Kind::BasicAuth.key(&login);
            let cred: records::BasicAuthCredential = get_json(kv, &key)?
                .ok_or_else(|| CliError::Failed(format!("no login {login:?}")))?;
            kv.delete(&key)?;
            kv.delete(&records::index_key(
                &cred.consumer_id,
                Kind::BasicAuth,
                &cred.id,
            ))?;
            Ok(format!("basic-auth login {login} removed"))
        }
        ("jwt", "add") => {
            let c = find_consumer(kv, &one(&cmd, "a USERNAME or ID")?)?;
            let o = &cmd.opts;
            let claim = o
                .key
                .clone()
                .ok_or_else(|| usage("jwt add needs --key CLAIM-VALUE"))?;
            records::check_jwt_key(&claim).map_err(CliError::Failed)?;
            let mut generated = None;
            let secret = if o.generate_secret {
                let mut b = [0u8; 32];
                random(&mut b)?;
                use base64::Engine;
                let s = base64::engine::general_purpose::STANDARD.encode(b);
                generated = Some(s.clone());
                Some(s)
            } else {
                o.secret.clone()
            };
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p)
                    .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", p.display())))
            };
            let jwk =
                match &o.jwk {
                    Some(p) => Some(serde_json::from_str(&read(p)?).map_err(|e| {
                        CliError::Failed(format!("{} is not JSON: {e}", p.display()))
                    })?),
                    None => None,
                };
            let mut id = [0u8; 6];
            random(&mut id)?;
            let cred = records::JwtCredential {
                id: format!("jwt-{}", hex(&id)),
                consumer_id: c.id.clone(),
                key: claim.clone(),
                algorithms: o.algorithms.clone(),
                secret,
                public_key: o.public_key.as_ref().map(read).transpose()?,
                jwk,
                jwks_url: o.jwks_url.clone(),
                created_at: now,
            };
            // The same checks the gateway makes, so a bad key fails here rather than at request time.
            jwt::credential_key(&cred).map_err(|_| {
                CliError::Failed(
                    "give exactly one usable key: --secret (base64), --generate-secret, --public-key \
                     (a public PEM), --jwk (a public JWK) or --jwks-url"
                        .into(),
                )
            })?;
            for a in &cred.algorithms {
                if a.parse::<jsonwebtoken::Algorithm>().is_err() {
                    return Err(CliError::Failed(format!("unknown algorithm {a:?}")));
                }
            }
            let key = Kind::Jwt.key(&claim);
            if kv.get(&key)?.is_some() {
                return Err(CliError::Failed(format!(
                    "a JWT credential for {claim:?} exists"
                )));
            }
            put_json(kv, &key, &cred)?;
            kv.put(&records::index_key(&c.id, Kind::Jwt, &cred.id), &key)?;
            let mut out = format!(
                "jwt credential {} ({claim}) added for consumer {}",
                cred.id, c.username
            );
            if let Some(s) = generated {
                out = format!("{s}\n({out}; HMAC secret, base64, shown once)");
            }
            Ok(out)
        }
        ("jwt", "remove") => {
            let claim = one(&cmd, "a CLAIM-VALUE")?;
            let key = Kind::Jwt.key(&claim);
            let cred: records::JwtCredential = get_json(kv, &key)?
                .ok_or_else(|| CliError::Failed(format!("no JWT credential for {claim:?}")))?;
            kv.delete(&key)?;
            kv.delete(&records::index_key(&cred.consumer_id, Kind::Jwt, &cred.id))?;
            Ok(format!("jwt credential {} removed", cred.id))
        }
        ("hmac", "add") => {
            let [consumer, username] = cmd.positional.as_slice() else {
                return Err(usage("hmac add takes USERNAME|ID and HMAC-USERNAME"));
            };
            let c = find_consumer(kv, consumer)?;
            check("hmac username", username)?;
            let o = &cmd.opts;
            let (secret, generated) = match (&o.secret, o.secret_stdin, o.generate_secret) {
                (Some(s), false, false) => (s.clone(), false),
                (None, true, false) => (stdin()?, false),
                (None, false, true) => {
                    let mut b = [0u8; 32];
                    random(&mut b)?;
                    use base64::Engine;
                    (
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
                        true,
                    )
                }
                _ => {
                    return Err(usage(
                        "give one of --secret S, --secret-stdin or --generate-secret",
                    ))
                }
            };
            if secret.is_empty() || secret.len() > MAX_HMAC_SECRET_BYTES {
                return Err(CliError::Failed(format!(
                    "the secret must be 1 to {MAX_HMAC_SECRET_BYTES} bytes"
                )));
            }
            let key = Kind::HmacAuth.key(username);
            if kv.get(&key)?.is_some() {
                return Err(CliError::Failed(format!(
                    "hmac username {username:?} exists"
                )));
            }
            let mut id = [0u8; 6];
            random(&mut id)?;
            let cred = records::HmacAuthCredential {
                id: format!("hmac-{}", hex(&id)),
                consumer_id: c.id.clone(),
                username: username.clone(),
                secret: secret.clone(),
                created_at: now,
            };
            put_json(kv, &key, &cred)?;
            kv.put(&records::index_key(&c.id, Kind::HmacAuth, &cred.id), &key)?;
            let out = format!(
                "hmac-auth username {username} added for consumer {} ({})",
                c.username, cred.id
            );
            Ok(if generated {
                format!("{secret}\n({out}; secret shown once)")
            } else {
                out
            })
        }
        ("hmac", "remove") => {
            let username = one(&cmd, "an HMAC-USERNAME")?;
            let key = Kind::HmacAuth.key(&username);
            let cred: records::HmacAuthCredential = get_json(kv, &key)?
                .ok_or_else(|| CliError::Failed(format!("no hmac username {username:?}")))?;
            kv.delete(&key)?;
            kv.delete(&records::index_key(
                &cred.consumer_id,
                Kind::HmacAuth,
                &cred.id,
            ))?;
            Ok(format!("hmac-auth username {username} removed"))
        }
        (group, action) => Err(usage(format!("unknown command {group} {action}"))),
    }
}

/// Remove a credential; API keys are kept as revoked so the gateway can say so.
fn revoke_or_delete(kv: &mut dyn Kv, cred_key: &str, now: u64) -> Result<(), CliError> {
    if cred_key.starts_with(&Kind::KeyAuth.prefix()) {
        if let Some(mut k) = get_json::<records::KeyAuthCredential>(kv, cred_key)? {
            if k.revoked_at.is_none() {
                k.revoked_at = Some(now);
                put_json(kv, cred_key, &k)?;
            }
        }
        Ok(())
    } else {
        Ok(kv.delete(cred_key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    fn exec(kv: &mut MemoryKv, line: &str) -> Result<String, CliError> {
        let mut args: Vec<String> = line.split_whitespace().map(String::from).collect();
        args.push("--local".into());
        let (cmd, _) = parse(&args)?;
        let mut counter = (kv.values.len() as u8).wrapping_mul(37);
        let mut random = |out: &mut [u8]| {
            for b in out.iter_mut() {
                counter = counter.wrapping_add(1);
                *b = counter;
            }
            Ok(())
        };
        run(kv, cmd, 1_700_000_000, &mut random, &mut || {
            Ok("from-stdin".into())
        })
    }

    #[test]
    fn help_of_an_identity_command_is_its_usage() {
        for args in [
            &["key", "--help"][..],
            &["consumer", "add", "-h"],
            &["jwt", "--help", "--local"],
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            assert_eq!(dispatch(&args), Some(Ok(USAGE.to_string())), "{args:?}");
        }
    }

    #[test]
    fn consumer_key_lifecycle_stores_only_digests() {
        let mut kv = MemoryKv::default();
        let out = exec(
            &mut kv,
            "consumer add alice --id c1 --group admin --group dev --custom-id x9",
        )
        .unwrap();
        assert!(out.contains("id c1"), "{out}");
        assert!(exec(&mut kv, "consumer add alice").is_err());
        let out = exec(&mut kv, "key create alice").unwrap();
        let key = out.lines().next().unwrap().to_string();
        assert!(key.starts_with("eg_"));
        // The key itself is nowhere in KV.
        assert!(kv
            .values
            .iter()
            .all(|(k, v)| !k.contains(&key) && !v.contains(&key)));
        let digest = keyauth::digest(&key);
        let stored: records::KeyAuthCredential =
            serde_json::from_str(&kv.values[&Kind::KeyAuth.key(&digest)]).unwrap();
        assert_eq!(stored.consumer_id, "c1");
        let list = exec(&mut kv, "key list alice").unwrap();
        assert!(
            list.contains(&stored.id) && list.contains("active"),
            "{list}"
        );

        // The key given where its id belongs is refused without being printed.
        for wrong in [key.as_str(), "0123456789abcdef0123"] {
            let err = exec(&mut kv, &format!("key revoke {wrong}")).unwrap_err();
            let text = err.render();
            assert!(!text.contains(wrong), "{text}");
            assert!(
                text.contains("not a key id") || text.contains("no key with that id"),
                "{text}"
            );
        }
        exec(&mut kv, &format!("key revoke {}", stored.id)).unwrap();
        let list = exec(&mut kv, "key list c1").unwrap();
        assert!(list.contains("revoked"), "{list}");
        let consumers = exec(&mut kv, "consumer list").unwrap();
        assert!(
            consumers.contains("c1\talice\tx9\tadmin,dev"),
            "{consumers}"
        );

        let out = exec(&mut kv, "key create alice").unwrap();
        let key2 = out.lines().next().unwrap().to_string();
        exec(&mut kv, &format!("key revoke --key {key2}")).unwrap();
        exec(&mut kv, "consumer remove alice").unwrap();
        assert!(
            kv.values.keys().all(|k| !k.starts_with("consumer")),
            "{:?}",
            kv.values.keys()
        );
        // Keys stay as revoked tombstones.
        assert_eq!(
            kv.values
                .keys()
                .filter(|k| k.starts_with("credentials/key-auth/"))
                .count(),
            2
        );
    }

    #[test]
    fn basic_auth_and_jwt_credentials() {
        let mut kv = MemoryKv::default();
        exec(&mut kv, "consumer add bob --id c2").unwrap();
        exec(
            &mut kv,
            "basic-auth add bob bob-login --password-stdin --iterations 1000",
        )
        .unwrap();
        let cred: records::BasicAuthCredential =
            serde_json::from_str(&kv.values["credentials/basic-auth/bob-login"]).unwrap();
        assert!(!cred.password_hash.contains("from-stdin"));
        assert_eq!(
            basic::verify_password("from-stdin", &cred.password_hash),
            Ok(true)
        );
        assert!(exec(
            &mut kv,
            "basic-auth add bob other --password x --iterations 5"
        )
        .is_err());

        let out = exec(
            &mut kv,
            "jwt add bob --key https://idp.example --generate-secret --algorithm HS256",
        )
        .unwrap();
        assert!(out.contains("shown once"), "{out}");
        assert!(
            exec(&mut kv, "jwt add bob --key k2").is_err(),
            "no key given"
        );
        assert!(exec(
            &mut kv,
            "jwt add bob --key k3 --jwks-url https://idp/jwks --algorithm XX1"
        )
        .is_err());
        exec(&mut kv, "jwt add bob --key k4 --jwks-url https://idp/jwks").unwrap();
        let all = exec(&mut kv, "credentials list bob").unwrap();
        assert_eq!(all.lines().count(), 3, "{all}");
        exec(&mut kv, "jwt remove k4").unwrap();
        exec(&mut kv, "basic-auth remove bob-login").unwrap();
        assert_eq!(
            exec(&mut kv, "credentials list bob")
                .unwrap()
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for line in [
            "consumer",
            "consumer add",
            "key revoke",
            "consumer frob x",
            "key create a --bogus",
        ] {
            let mut kv = MemoryKv::default();
            let err = exec(&mut kv, line).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{line}: {err:?}");
        }
        assert!(
            parse(&["key".into(), "list".into(), "a".into()]).is_err(),
            "needs --local/--remote"
        );
    }
    #[test]
    fn hmac_credentials_store_the_secret_as_given_and_go_with_the_consumer() {
        let mut kv = MemoryKv::default();
        exec(&mut kv, "consumer add alice --id c1").unwrap();
        let out = exec(&mut kv, "hmac add alice alice-hmac --generate-secret").unwrap();
        let secret = out.lines().next().unwrap().to_string();
        assert_eq!(secret.len(), 43, "{out}");
        assert!(out.contains("shown once"), "{out}");
        let cred: records::HmacAuthCredential =
            serde_json::from_str(&kv.values["credentials/hmac-auth/alice-hmac"]).unwrap();
        assert_eq!(cred.secret, secret);
        assert_eq!(cred.consumer_id, "c1");
        assert_eq!(cred.username, "alice-hmac");
        assert!(cred.id.starts_with("hmac-"));
        exec(&mut kv, "hmac add c1 alice-2 --secret-stdin").unwrap();
        let cred: records::HmacAuthCredential =
            serde_json::from_str(&kv.values["credentials/hmac-auth/alice-2"]).unwrap();
        assert_eq!(cred.secret, "from-stdin");
        let out = exec(&mut kv, "hmac add alice alice-3 --secret plain").unwrap();
        assert!(!out.contains("plain"), "{out}");
        assert!(exec(&mut kv, "hmac add alice alice-3 --secret again").is_err());
        assert!(exec(&mut kv, "hmac add alice bad/name --secret x").is_err());
        assert!(exec(&mut kv, "hmac add alice alice-4").is_err());
        assert!(exec(
            &mut kv,
            "hmac add alice alice-4 --secret x --generate-secret"
        )
        .is_err());
        let list = exec(&mut kv, "credentials list alice").unwrap();
        assert_eq!(list.matches("hmac-auth/hmac-").count(), 3, "{list}");
        exec(&mut kv, "hmac remove alice-3").unwrap();
        assert!(!kv.values.contains_key("credentials/hmac-auth/alice-3"));
        assert!(exec(&mut kv, "hmac remove alice-3").is_err());
        exec(&mut kv, "consumer remove alice").unwrap();
        assert!(
            kv.values.keys().all(|k| !k.contains("hmac")),
            "{:?}",
            kv.values.keys()
        );
    }
}
