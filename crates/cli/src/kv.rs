//! Access to the `CONFIG` KV namespace: a small trait, an in-memory implementation for tests, and one
//! that runs `wrangler kv key get|put`.

#[cfg(test)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The two KV operations the CLI needs. Errors are messages for the user.
pub trait Kv {
    /// The value stored at `key`, or `None` when there is none.
    fn get(&mut self, key: &str) -> Result<Option<String>, String>;
    fn put(&mut self, key: &str, value: &str) -> Result<(), String>;
    /// Store bytes that need not be text (the compiled form of a configuration).
    fn put_bytes(&mut self, _key: &str, _value: &[u8]) -> Result<(), String> {
        Err("this store cannot write binary values".into())
    }
    /// Remove `key` (used by the identity commands).
    fn delete(&mut self, _key: &str) -> Result<(), String> {
        Err("this store cannot delete keys".into())
    }
    /// Every key starting with `prefix`, sorted (used by the identity commands).
    fn list(&mut self, _prefix: &str) -> Result<Vec<String>, String> {
        Err("this store cannot list keys".into())
    }
}

/// An in-memory namespace. Records the order of writes, and can be told to fail a write.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryKv {
    pub values: BTreeMap<String, String>,
    /// Values written with `put_bytes`.
    pub binary: BTreeMap<String, Vec<u8>>,
    /// Keys in the order they were written.
    pub writes: Vec<String>,
    /// A write to this key fails (to test interrupted pushes).
    pub fail_put_of: Option<String>,
}

#[cfg(test)]
impl Kv for MemoryKv {
    fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        Ok(self.values.get(key).cloned())
    }

    fn put(&mut self, key: &str, value: &str) -> Result<(), String> {
        if self.fail_put_of.as_deref() == Some(key) {
            return Err(format!("simulated failure writing {key}"));
        }
        self.writes.push(key.to_string());
        self.values.insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn put_bytes(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        if self.fail_put_of.as_deref() == Some(key) {
            return Err(format!("simulated failure writing {key}"));
        }
        self.writes.push(key.to_string());
        self.binary.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), String> {
        self.values.remove(key);
        Ok(())
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, String> {
        Ok(self
            .values
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// The binding name of the configuration namespace in wrangler.toml.
pub const BINDING: &str = "CONFIG";

/// The namespace id wrangler.toml ships with, to be replaced before deploying.
const PLACEHOLDER_ID: &str = "REPLACE_WITH_YOUR_KV_NAMESPACE_ID";

/// Whether the `[[kv_namespaces]]` entry of [`BINDING`] in a wrangler.toml still has the placeholder id
/// (`--remote` would then reach no namespace; wrangler's own error does not say why).
fn config_namespace_is_placeholder(toml: &str) -> bool {
    toml.split("[[kv_namespaces]]").skip(1).any(|block| {
        // The entry ends where the next table starts.
        let block = block.split("\n[").next().unwrap_or("");
        let value = |name: &str| {
            block.lines().find_map(|line| {
                let (k, v) = line.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        value("binding").as_deref() == Some(BINDING)
            && value("id").as_deref() == Some(PLACEHOLDER_ID)
    })
}

/// What `wrangler kv key get --text` prints (on stdout, exit status 0) for a missing key in local mode.
const LOCAL_NOT_FOUND: &str = "Value not found";

/// Runs wrangler in the current directory, which must hold the Worker's wrangler configuration.
///
/// How wrangler 4.86 reports a missing key to `kv key get`: in local mode it prints `Value not found`
/// on stdout and exits 0; in remote mode the API answers 404 and wrangler exits non-zero with
/// `Failed to fetch .../values/<key> - 404: Not Found` in its error output.
pub struct WranglerKv {
    program: Vec<String>,
    remote: bool,
    persist_to: Option<PathBuf>,
}

impl WranglerKv {
    /// `remote` selects `--remote` (the deployed namespace) over `--local` (Miniflare's state on disk,
    /// `.wrangler/state` unless `persist_to` says otherwise).
    pub fn new(remote: bool, persist_to: Option<PathBuf>) -> Result<WranglerKv, String> {
        let has_config = ["wrangler.toml", "wrangler.json", "wrangler.jsonc"]
            .iter()
            .any(|f| Path::new(f).is_file());
        if !has_config {
            let cwd = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "?".into());
            return Err(format!(
                "no wrangler.toml in the current directory ({cwd}): run this from the repository root \
                 (scripts/config does)"
            ));
        }
        if remote && persist_to.is_some() {
            return Err("--persist-to only applies to --local".into());
        }
        if remote {
            let toml = std::fs::read_to_string("wrangler.toml").unwrap_or_default();
            if config_namespace_is_placeholder(&toml) {
                return Err(format!(
                    "wrangler.toml still has the placeholder id {PLACEHOLDER_ID} for the {BINDING} \
                     namespace: create it with `npx wrangler kv namespace create {BINDING}` and put the \
                     id it prints there (README.md, \"Deploying\"); --local works without it"
                ));
            }
        }
        Ok(WranglerKv {
            program: wrangler_program(std::env::var("WRANGLER").ok().as_deref()),
            remote,
            persist_to,
        })
    }

    fn args(&self, op: &str, key: &str) -> Vec<String> {
        let mut args: Vec<String> = ["kv", "key", op, key, "--binding", BINDING]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(if self.remote { "--remote" } else { "--local" }.into());
        if let Some(dir) = &self.persist_to {
            args.push("--persist-to".into());
            args.push(dir.display().to_string());
        }
        args
    }

    /// Run wrangler; with `--local`, again (up to [`LOCAL_BUSY_TRIES`] times in all, waiting a little
    /// longer each time) while it fails because the local KV database is busy: a gateway running
    /// on the same state (`scripts/dev`) holds it for a moment now and then.
    fn run(&self, args: &[String]) -> Result<std::process::Output, String> {
        let mut tries = 0;
        loop {
            let out = self.run_once(args)?;
            tries += 1;
            if self.remote || out.status.success() || tries >= LOCAL_BUSY_TRIES || !busy(&out) {
                return Ok(out);
            }
            std::thread::sleep(std::time::Duration::from_millis(200 * tries));
        }
    }

    fn run_once(&self, args: &[String]) -> Result<std::process::Output, String> {
        let (program, fixed) = self
            .program
            .split_first()
            .ok_or("the WRANGLER environment variable is empty")?;
        Command::new(program)
            .args(fixed)
            .args(args)
            .stdin(Stdio::null())
            // The value is printed at log level "log"; a quieter level would hide it, a louder one
            // would mix debug lines into it.
            .env("WRANGLER_LOG", "log")
            .output()
            .map_err(|e| format!("could not run {}: {e}", self.program.join(" ")))
    }
}

/// How many times a local KV command is run while the database is busy (see `WranglerKv::run`).
const LOCAL_BUSY_TRIES: u64 = 5;

/// Whether wrangler failed because the local KV database (SQLite) was locked by another process.
fn busy(out: &std::process::Output) -> bool {
    let has = |b: &[u8]| {
        let text = String::from_utf8_lossy(b);
        text.contains("SQLITE_BUSY") || text.contains("database is locked")
    };
    has(&out.stderr) || has(&out.stdout)
}

/// The command that runs wrangler: `$WRANGLER` (split on spaces, so `npx wrangler` works), else
/// `node_modules/.bin/wrangler` when it exists, else `npx wrangler`.
fn wrangler_program(env: Option<&str>) -> Vec<String> {
    if let Some(words) = env.map(|e| e.split_whitespace().map(String::from).collect::<Vec<_>>()) {
        if !words.is_empty() {
            return words;
        }
    }
    let local = Path::new("node_modules/.bin/wrangler");
    if local.exists() {
        vec![local.display().to_string()]
    } else {
        vec!["npx".into(), "wrangler".into()]
    }
}

/// Interpret the output of `wrangler kv key get --text`.
fn parse_get_output(
    key: &str,
    success: bool,
    stdout: &str,
    stderr: &str,
) -> Result<Option<String>, String> {
    if success {
        // `--text` prints the value followed by one newline.
        let value = stdout.strip_suffix('\n').unwrap_or(stdout);
        if value == LOCAL_NOT_FOUND {
            return Ok(None);
        }
        return Ok(Some(value.to_string()));
    }
    let all = format!("{stderr}\n{stdout}");
    if all.contains("404: Not Found") {
        return Ok(None);
    }
    Err(format!("wrangler kv key get {key} failed:\n{}", tail(&all)))
}

/// The last few non-empty lines of wrangler's output, for an error message.
fn tail(output: &str) -> String {
    let plain = strip_ansi(output);
    let lines: Vec<&str> = plain.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(15);
    lines[start..].join("\n")
}

/// Remove terminal colour sequences (`ESC [ ... letter`): wrangler colours its errors even in a pipe.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Kv for WranglerKv {
    fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        let mut args = self.args("get", key);
        args.push("--text".into());
        let out = self.run(&args)?;
        parse_get_output(
            key,
            out.status.success(),
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn put(&mut self, key: &str, value: &str) -> Result<(), String> {
        self.put_bytes(key, value.as_bytes())
    }

    fn put_bytes(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        // The value goes through a file: a configuration can be far larger than an argument may be.
        let file = TempFile::create(value)?;
        let mut args = self.args("put", key);
        args.push("--path".into());
        args.push(file.0.display().to_string());
        let out = self.run(&args)?;
        if out.status.success() {
            Ok(())
        } else {
            let all = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
            Err(format!("wrangler kv key put {key} failed:\n{}", tail(&all)))
        }
    }

    fn delete(&mut self, key: &str) -> Result<(), String> {
        let out = self.run(&self.args("delete", key))?;
        if out.status.success() {
            return Ok(());
        }
        let all = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        Err(format!(
            "wrangler kv key delete {key} failed:\n{}",
            tail(&all)
        ))
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, String> {
        // `kv key list` takes no key: build the arguments around a placeholder and drop it.
        let mut args = self.args("list", "");
        args.retain(|a| !a.is_empty());
        args.push("--prefix".into());
        args.push(prefix.to_string());
        let out = self.run(&args)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let all = format!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
            return Err(format!("wrangler kv key list failed:\n{}", tail(&all)));
        }
        // The JSON array starts at the first '[' (wrangler may print banners before it).
        let start = stdout
            .find('[')
            .ok_or("wrangler kv key list printed no JSON")?;
        let keys: Vec<serde_json::Value> = serde_json::from_str(stdout[start..].trim())
            .map_err(|e| format!("wrangler kv key list printed unexpected output: {e}"))?;
        let mut names: Vec<String> = keys
            .iter()
            .filter_map(|k| k.get("name").and_then(|n| n.as_str()).map(String::from))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn create(contents: &[u8]) -> Result<TempFile, String> {
        use std::io::Write;
        let dir = std::env::temp_dir();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = dir.join(format!(
                "edgegate-config-{}-{nanos}-{attempt}.json",
                std::process::id()
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let file = TempFile(path);
                    f.write_all(contents)
                        .and_then(|()| f.flush())
                        .map_err(|e| format!("could not write {}: {e}", file.0.display()))?;
                    return Ok(file);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("could not create {}: {e}", path.display())),
            }
        }
        Err(format!(
            "could not create a temporary file in {}",
            dir.display()
        ))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_namespace_id_is_recognised() {
        let shipped = include_str!("../../../wrangler.toml");
        assert!(config_namespace_is_placeholder(shipped));
        let real = shipped.replace(PLACEHOLDER_ID, "0f2ac74b498b48028cb68387c421e279");
        assert!(!config_namespace_is_placeholder(&real));
        let other =
            "[[kv_namespaces]]\nbinding = \"OTHER\"\nid = \"REPLACE_WITH_YOUR_KV_NAMESPACE_ID\"\n";
        assert!(!config_namespace_is_placeholder(other));
    }

    #[test]
    fn local_missing_key_is_none() {
        assert_eq!(
            parse_get_output("k", true, "Value not found\n", ""),
            Ok(None)
        );
    }

    #[test]
    fn remote_missing_key_is_none() {
        let stderr =
            "✘ [ERROR] Failed to fetch https://api.cloudflare.com/client/v4/accounts/a/storage/kv/\
                      namespaces/n/values/config%2Fcurrent - 404: Not Found);\n";
        assert_eq!(parse_get_output("k", false, "", stderr), Ok(None));
    }

    #[test]
    fn value_loses_exactly_the_newline_wrangler_adds() {
        assert_eq!(
            parse_get_output("k", true, "{\"a\":1}\n", ""),
            Ok(Some("{\"a\":1}".into()))
        );
        assert_eq!(
            parse_get_output("k", true, "doc\n\n", ""),
            Ok(Some("doc\n".into()))
        );
    }

    /// A stand-in wrangler that fails with SQLite's busy error `fails` times, then prints `ok`.
    fn flaky_wrangler(dir: &Path, fails: u32, remote: bool) -> WranglerKv {
        let script = dir.join("wrangler.sh");
        let count = dir.join("count");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}\n\
                 if [ $n -lt {fails} ]; then echo 'database is locked: SQLITE_BUSY' >&2; exit 1; fi\necho ok\n",
                c = count.display()
            ),
        )
        .unwrap();
        WranglerKv {
            program: vec!["sh".into(), script.display().to_string()],
            remote,
            persist_to: None,
        }
    }

    #[test]
    fn a_busy_local_database_is_tried_again() {
        let dir = std::env::temp_dir().join(format!("edgegate-kv-busy-{}", std::process::id()));
        for (fails, remote, ok, runs) in [
            (2, false, true, 3),
            (9, false, false, 5),
            (1, true, false, 1),
        ] {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let kv = flaky_wrangler(&dir, fails, remote);
            let out = kv.run(&["kv".into()]).unwrap();
            assert_eq!(out.status.success(), ok, "fails {fails}, remote {remote}");
            let count = std::fs::read_to_string(dir.join("count")).unwrap();
            assert_eq!(
                count.trim(),
                runs.to_string(),
                "fails {fails}, remote {remote}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn other_failures_are_errors_with_wrangler_output() {
        let err = parse_get_output("k", false, "", "✘ [ERROR] Not logged in.\n").unwrap_err();
        assert!(err.contains("wrangler kv key get k failed") && err.contains("Not logged in"));
    }

    #[test]
    fn colours_are_removed_from_wrangler_errors() {
        let coloured = "\u{1b}[31m✘ \u{1b}[41;31m[\u{1b}[41;97mERROR\u{1b}[41;31m]\u{1b}[0m \u{1b}[1mNo token.\u{1b}[0m\n";
        assert_eq!(tail(coloured), "✘ [ERROR] No token.");
    }

    #[test]
    fn program_comes_from_env_then_node_modules_then_npx() {
        assert_eq!(wrangler_program(Some("npx wrangler")), ["npx", "wrangler"]);
        assert_eq!(wrangler_program(Some("/opt/wrangler")), ["/opt/wrangler"]);
        let default = wrangler_program(Some("  "));
        assert!(
            default == ["node_modules/.bin/wrangler"] || default == ["npx", "wrangler"],
            "{default:?}"
        );
    }

    #[test]
    fn temp_file_holds_value_and_is_removed() {
        let file = TempFile::create(b"hello").unwrap();
        let path = file.0.clone();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
        drop(file);
        assert!(!path.exists());
    }
}
