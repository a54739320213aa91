//! `edgegate-config`: validate gateway configuration and manage its versions in Workers KV.
//!
//! Run from the repository root (where wrangler.toml is), usually through `scripts/config`.

mod commands;
mod identity;
mod kv;
mod purge;

use commands::CliError;
use std::io::{Read, Write};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: edgegate-config <command> [options]

commands:
  validate FILE                 check a configuration document (FILE may be - for stdin)
  schema                        print the JSON Schema of configuration documents
  compile FILE [--out PATH]     validate FILE and write its compiled form (what push stores next to
                                each version) to PATH (default FILE.compiled)
  push FILE (--local|--remote) [--persist-to DIR]
                                validate FILE, store it as a new version and put it into service
  rollback (--local|--remote) [--persist-to DIR]
                                put the previous version back into service
  show (--local|--remote) [--persist-to DIR] [--version N]
                                print the pointer, the version in service and its document
  diff FILE (--local|--remote) [--persist-to DIR] [--version N]
                                validate FILE and list the services, routes and plugin instances a
                                push would add, remove or change (against version N with --version)
  purge ROUTE | --tag TAG | --all (--local|--remote) [--persist-to DIR]
                                invalidate cached responses (proxy-cache) in every location

consumers and credentials: consumer add|remove|list, key create|revoke|list, basic-auth add|remove,
  jwt add|remove, hmac add|remove, credentials list (run one without arguments for its options; docs/authentication.md)

--local uses wrangler's local KV state (.wrangler/state, or DIR), --remote the deployed namespace.
KV is reached with wrangler: $WRANGLER, else node_modules/.bin/wrangler, else npx wrangler.
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not worth a panic.
            let _ = writeln!(stdout, "{}", output.trim_end_matches('\n'));
        }
        Err(e) => {
            eprintln!("{}", e.render());
            std::process::exit(e.exit_code());
        }
    }
}

/// Where the KV operations go, from `--local|--remote [--persist-to DIR]`.
#[derive(Clone, Debug, PartialEq)]
struct Target {
    remote: bool,
    persist_to: Option<PathBuf>,
}

#[derive(Debug, PartialEq)]
enum Cmd {
    Help,
    Validate(String),
    Schema,
    Compile(String, Option<PathBuf>),
    Push(String, Target),
    Rollback(Target),
    Show(Target, Option<u64>),
    Diff(String, Target, Option<u64>),
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// One argument: `--flag=value` split into the flag and its inline value; anything else as it is.
pub(crate) fn split_flag(arg: &str) -> (&str, Option<String>) {
    match arg.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
        _ => (arg, None),
    }
}

/// A flag's value: the inline one (`--flag=value`), else the next argument. The error is the usage
/// message, for the caller's own `usage` to wrap.
pub(crate) fn flag_value(
    inline: &Option<String>,
    rest: &mut std::slice::Iter<'_, String>,
    name: &str,
) -> Result<String, String> {
    inline
        .clone()
        .or_else(|| rest.next().cloned())
        .ok_or_else(|| format!("{name} needs a value"))
}

fn parse_args(args: &[String]) -> Result<Cmd, CliError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage("no command given"));
    };
    let mut positional = Vec::new();
    let mut local = false;
    let mut remote = false;
    let mut persist_to = None;
    let mut version = None;
    let mut out = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = crate::split_flag(arg);
        let mut value = |name: &str| crate::flag_value(&inline, &mut it, name).map_err(usage);
        match flag {
            "-h" | "--help" => return Ok(Cmd::Help),
            "--local" => local = true,
            "--remote" => remote = true,
            "--persist-to" => persist_to = Some(PathBuf::from(value("--persist-to")?)),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--version" => {
                let v = value("--version")?;
                version =
                    Some(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        usage(format!("--version {v:?} is not a version number"))
                    })?);
            }
            "-" => positional.push(arg.clone()),
            f if f.starts_with('-') => return Err(usage(format!("unknown option {f}"))),
            _ => positional.push(arg.clone()),
        }
    }
    let target = |command: &str| -> Result<Target, CliError> {
        match (local, remote) {
            (true, true) => Err(usage("--local and --remote exclude each other")),
            (false, false) => Err(usage(format!(
                "{command} needs --local (wrangler's local state) or --remote (the deployed namespace)"
            ))),
            (_, remote) => {
                if remote && persist_to.is_some() {
                    return Err(usage("--persist-to only applies to --local"));
                }
                Ok(Target {
                    remote,
                    persist_to: persist_to.clone(),
                })
            }
        }
    };
    let no_kv_options = |command: &str| {
        if local || remote || persist_to.is_some() || version.is_some() {
            Err(usage(format!("{command} takes no KV options")))
        } else {
            Ok(())
        }
    };
    let one_file = |command: &str, positional: &[String]| match positional {
        [file] => Ok(file.clone()),
        [] => Err(usage(format!("{command} needs a FILE"))),
        _ => Err(usage(format!("{command} takes one FILE"))),
    };
    let no_positional = |command: &str, positional: &[String]| {
        if positional.is_empty() {
            Ok(())
        } else {
            Err(usage(format!(
                "unexpected argument {:?} for {command}",
                positional[0]
            )))
        }
    };
    if out.is_some() && command != "compile" {
        return Err(usage("--out only applies to compile"));
    }
    let cmd = match command.as_str() {
        "-h" | "--help" | "help" => Cmd::Help,
        "validate" => {
            no_kv_options("validate")?;
            Cmd::Validate(one_file("validate", &positional)?)
        }
        "compile" => {
            no_kv_options("compile")?;
            Cmd::Compile(one_file("compile", &positional)?, out.take())
        }
        "schema" => {
            no_kv_options("schema")?;
            no_positional("schema", &positional)?;
            Cmd::Schema
        }
        "push" => {
            if version.is_some() {
                return Err(usage("--version only applies to show and diff"));
            }
            let file = one_file("push", &positional)?;
            Cmd::Push(file, target("push")?)
        }
        "rollback" => {
            if version.is_some() {
                return Err(usage("--version only applies to show and diff"));
            }
            no_positional("rollback", &positional)?;
            Cmd::Rollback(target("rollback")?)
        }
        "show" => {
            no_positional("show", &positional)?;
            Cmd::Show(target("show")?, version)
        }
        "diff" => {
            let file = one_file("diff", &positional)?;
            Cmd::Diff(file, target("diff")?, version)
        }
        other => return Err(usage(format!("unknown command {other:?}"))),
    };
    Ok(cmd)
}

fn read_document(file: &str) -> Result<String, CliError> {
    let limit = commands::MAX_DOCUMENT_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let result = if file == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    result.map_err(|e| CliError::Failed(format!("cannot read {file}: {e}")))?;
    if bytes.len() as u64 >= limit {
        return Err(CliError::Failed(format!(
            "{file} is larger than {} bytes, the most a KV value can hold",
            commands::MAX_DOCUMENT_BYTES
        )));
    }
    String::from_utf8(bytes).map_err(|e| CliError::Failed(format!("{file} is not UTF-8 text: {e}")))
}

fn schema_json() -> String {
    let schema = schemars::schema_for!(edgegate_core::config::GatewayConfig);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

fn open_kv(target: Target) -> Result<kv::WranglerKv, CliError> {
    kv::WranglerKv::new(target.remote, target.persist_to).map_err(CliError::Failed)
}

/// Where `push`, `rollback`, `purge` and the identity commands that write take their lock (with
/// `--local`): `edgegate-config.lock` in the local state
/// directory (`--persist-to DIR`, else `.wrangler/state`, wrangler's default).
fn lock_path(target: &Target) -> PathBuf {
    target
        .persist_to
        .clone()
        .unwrap_or_else(|| PathBuf::from(".wrangler/state"))
        .join("edgegate-config.lock")
}

/// With `--local`, hold an exclusive lock on [`lock_path`] for the rest of the command, so that two
/// commands that read then write (push, rollback, purge, the identity commands but the lists) on the
/// same local state run one after the other instead of one losing the other's update (two pushes
/// writing the same version number, two purges one bump). Released when the returned file is
/// dropped (or the process ends). `--remote` has no lock: KV has no operation to build one on.
pub(crate) fn lock_local(target: &Target) -> Result<Option<std::fs::File>, CliError> {
    if target.remote {
        return Ok(None);
    }
    let path = lock_path(target);
    let fail = |e: std::io::Error| CliError::Failed(format!("cannot lock {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(fail)?;
    file.lock().map_err(fail)?;
    Ok(Some(file))
}

fn run(args: &[String]) -> Result<String, CliError> {
    if let Some(result) = identity::dispatch(args) {
        return result;
    }
    if args.first().map(String::as_str) == Some("purge") {
        return purge::run(&args[1..]);
    }
    match parse_args(args)? {
        Cmd::Help => Ok(USAGE.to_string()),
        Cmd::Validate(file) => commands::validate(&read_document(&file)?),
        Cmd::Schema => Ok(schema_json()),
        Cmd::Compile(file, out) => {
            let (bytes, summary) = commands::compile(&read_document(&file)?)?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{file}.compiled")));
            if file == "-" && out == std::path::Path::new("-.compiled") {
                return Err(usage("compile - needs --out PATH"));
            }
            std::fs::write(&out, &bytes)
                .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", out.display())))?;
            Ok(format!(
                "{summary}; compiled form written to {} ({} bytes)",
                out.display(),
                bytes.len()
            ))
        }
        Cmd::Push(file, target) => {
            let text = read_document(&file)?;
            // Validate before touching wrangler, so a bad file fails fast and offline.
            commands::validate(&text)?;
            let mut kv = open_kv(target.clone())?;
            let _lock = lock_local(&target)?;
            commands::push(&mut kv, &text)
        }
        Cmd::Rollback(target) => {
            let mut kv = open_kv(target.clone())?;
            let _lock = lock_local(&target)?;
            commands::rollback(&mut kv)
        }
        Cmd::Show(target, version) => commands::show(&mut open_kv(target)?, version),
        Cmd::Diff(file, target, version) => {
            let text = read_document(&file)?;
            // Validate before touching wrangler, as push does.
            commands::validate(&text)?;
            commands::diff(&mut open_kv(target)?, &file, &text, version)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Cmd, CliError> {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        parse_args(&args)
    }

    fn local(dir: Option<&str>) -> Target {
        Target {
            remote: false,
            persist_to: dir.map(PathBuf::from),
        }
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("validate c.json"), Ok(Cmd::Validate("c.json".into())));
        assert_eq!(parse("validate -"), Ok(Cmd::Validate("-".into())));
        assert_eq!(parse("schema"), Ok(Cmd::Schema));
        assert_eq!(
            parse("compile c.json --out c.bin"),
            Ok(Cmd::Compile("c.json".into(), Some(PathBuf::from("c.bin"))))
        );
        assert_eq!(
            parse("compile c.json"),
            Ok(Cmd::Compile("c.json".into(), None))
        );
        assert!(parse("compile c.json --local").is_err());
        assert!(parse("push c.json --local --out x").is_err());
        assert_eq!(
            parse("push c.json --local --persist-to /tmp/x"),
            Ok(Cmd::Push("c.json".into(), local(Some("/tmp/x"))))
        );
        assert_eq!(
            parse("push --persist-to=/tmp/x --local c.json"),
            Ok(Cmd::Push("c.json".into(), local(Some("/tmp/x"))))
        );
        assert_eq!(
            parse("rollback --remote"),
            Ok(Cmd::Rollback(Target {
                remote: true,
                persist_to: None
            }))
        );
        assert_eq!(
            parse("show --local --version 3"),
            Ok(Cmd::Show(local(None), Some(3)))
        );
        assert_eq!(parse("show --local"), Ok(Cmd::Show(local(None), None)));
        assert_eq!(
            parse("diff c.json --local --version 2"),
            Ok(Cmd::Diff("c.json".into(), local(None), Some(2)))
        );
        assert_eq!(parse("--help"), Ok(Cmd::Help));
        assert_eq!(parse("push --help"), Ok(Cmd::Help));
    }

    #[test]
    fn rejects_bad_arguments_with_usage_errors() {
        for (args, fragment) in [
            ("", "no command given"),
            ("deploy", "unknown command \"deploy\""),
            ("validate", "validate needs a FILE"),
            ("validate a b", "takes one FILE"),
            ("validate a --local", "takes no KV options"),
            ("schema x", "unexpected argument \"x\""),
            ("push c.json", "needs --local"),
            ("push c.json --local --remote", "exclude each other"),
            (
                "push c.json --remote --persist-to d",
                "only applies to --local",
            ),
            (
                "push c.json --local --version 2",
                "only applies to show and diff",
            ),
            ("show --local --version x", "not a version number"),
            ("show --local --version 0", "not a version number"),
            ("show --local --version", "--version needs a value"),
            ("rollback --local --force", "unknown option --force"),
            ("rollback --local 3", "unexpected argument \"3\""),
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args}");
            let text = err.render();
            assert!(text.contains(fragment), "{args}: {text}");
            assert!(text.contains("usage: edgegate-config"), "{args}");
        }
    }

    /// docs/configuration.md shows the usage text exactly as `--help` prints it.
    #[test]
    fn the_documented_usage_is_the_help_text() {
        const DOC: &str = include_str!("../../../docs/configuration.md");
        let block = DOC
            .split("```text\n")
            .find(|b| b.starts_with("usage: edgegate-config"))
            .and_then(|b| b.split("```\n").next())
            .expect("a usage block in docs/configuration.md");
        assert_eq!(block, USAGE);
        assert_eq!(run(&["--help".to_string()]), Ok(USAGE.to_string()));
    }

    #[test]
    fn schema_is_pretty_json_for_the_config() {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        assert_eq!(schema["title"], "GatewayConfig");
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn unreadable_file_is_a_clear_error() {
        let err = run(&["validate".into(), "/nonexistent/c.json".into()]).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err
            .render()
            .starts_with("error: cannot read /nonexistent/c.json: "));
    }
}
