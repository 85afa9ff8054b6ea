//! `shipper plugin new --lang rust|python|js|c NAME [--dir PARENT]`: writes a plugin project
//! that builds and passes its test as written, outside any checkout of this repository
//! (docs/plugins.md §11.7).
//!
//! The project holds the plugin's source, `build.sh` (→ `NAME.wasm`), `test.sh` (native unit
//! tests where the language has them, the build, then `shipper plugin test --expect` against
//! a golden file), samples, a README, the WIT and the SDK sources; see [`files`] for what
//! each language gets. The files are written to a staging directory next to the target and
//! renamed into place, so a failed run leaves no half-written project.
//!
//! Does not own: building or testing the project (its scripts do that with the language's
//! toolchain; `tests/e2e/plugin_new.rs` runs them).

pub mod files;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use crate::exit::{Failure, FailureExt as _};
pub use files::Lang;

/// Flags of `shipper plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's language.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The plugin's name: lowercase ASCII letters, digits, `-` and `_`, starting with a
    /// letter. It names the project directory, the package and `NAME.wasm`.
    pub name: String,
    /// Where to create the project directory `NAME`.
    #[arg(long, value_name = "PARENT", default_value = ".")]
    pub dir: PathBuf,
}

/// Longest accepted name (a directory, a package and a file name are made of it).
const MAX_NAME_LEN: usize = 64;

/// Names a Rust package or library cannot have (keywords, the standard crates, the SDK the
/// project depends on), or npm refuses.
const RESERVED_NAMES: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "node_modules",
    "override",
    "priv",
    "proc-macro",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "shipper-sdk",
    "shipper_sdk",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Runs `shipper plugin new`.
pub fn execute(args: NewArgs) -> Result<(), Failure> {
    check_name(&args.name)
        .map_err(|e| anyhow!(e))
        .config_error()?;
    let target = args.dir.join(&args.name);
    check_target(&target).config_error()?;
    let files = files::project(args.lang, &args.name);
    write_project(&args.dir, &args.name, &files)
        .with_context(|| format!("cannot create the plugin project {}", target.display()))
        .runtime_error()?;
    println!(
        "created {}: a {} plugin ({} files); edit {}, then:\n  cd {} && ./test.sh\n\
         {}/README.md tells how to build, test and run it (`shipper receive hec`, `shipper run`).",
        target.display(),
        lang_name(args.lang),
        files.len(),
        args.lang.source(),
        target.display(),
        target.display(),
    );
    Ok(())
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
        Lang::C => "C",
    }
}

/// Whether `name` can name a project in every language: a Cargo package and library, an npm
/// package, a directory and a file. The error names the rule and suggests a name.
fn check_name(name: &str) -> Result<(), String> {
    let valid_chars = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_chars || name.len() > MAX_NAME_LEN {
        let rule = format!(
            "`{name}` is not a valid plugin name: use lowercase ASCII letters, digits, `-` and \
             `_`, starting with a letter, at most {MAX_NAME_LEN} characters"
        );
        return Err(match suggest(name) {
            Some(suggestion) => format!("{rule} (for example `{suggestion}`)"),
            None => format!("{rule} (for example `my-plugin`)"),
        });
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "`{name}` cannot be a plugin name: Rust or npm reserve it (a keyword, a standard \
             crate, or the SDK's own name); choose another, for example `{name}-formatter`"
        ));
    }
    Ok(())
}

/// `name` made valid, if that leaves something: lowercase, runs of other characters as `-`.
fn suggest(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out
        .trim_start_matches(|c: char| !c.is_ascii_lowercase())
        .trim_end_matches('-');
    let out: String = out.chars().take(MAX_NAME_LEN).collect();
    (!out.is_empty() && check_name(&out).is_ok()).then_some(out)
}

/// Refuses a target that exists and is not an empty directory.
fn check_target(target: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::metadata(target) else {
        return Ok(());
    };
    let empty = meta.is_dir()
        && std::fs::read_dir(target)
            .with_context(|| format!("cannot read {}", target.display()))?
            .next()
            .is_none();
    if !empty {
        let what = if meta.is_dir() {
            "is not empty"
        } else {
            "is not a directory"
        };
        return Err(anyhow!(
            "{} already exists and {what}: choose another NAME or --dir PARENT, or remove it",
            target.display()
        ));
    }
    Ok(())
}

/// Writes `files` into `parent/.NAME.new-PID`, then renames that to `parent/NAME` (replacing
/// an empty directory of that name).
fn write_project(parent: &Path, name: &str, files: &[files::File]) -> anyhow::Result<()> {
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = parent.join(format!(".{name}.new-{}", std::process::id()));
    let result = write_files(&staging, files).and_then(|()| {
        let target = parent.join(name);
        if target.is_dir() {
            std::fs::remove_dir(&target)
                .with_context(|| format!("cannot replace the empty {}", target.display()))?;
        }
        std::fs::rename(&staging, &target).with_context(|| {
            format!(
                "cannot rename {} to {}",
                staging.display(),
                target.display()
            )
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn write_files(dir: &Path, files: &[files::File]) -> anyhow::Result<()> {
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &file.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        #[cfg(unix)]
        if file.executable {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_work_in_every_language_are_accepted() {
        for name in ["my-plugin", "acme_audit2", "x", "splunk-hec-v2"] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_bad_name_is_refused_with_a_suggestion() {
        let error = check_name("My Plugin").unwrap_err();
        assert!(error.contains("lowercase ASCII letters"), "{error}");
        assert!(error.contains("`my-plugin`"), "{error}");
        for name in ["", "1plugin", "-x", "my.plugin", "my/plugin", "é", "../x"] {
            assert!(check_name(name).is_err(), "{name}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        let error = check_name("../escape").unwrap_err();
        assert!(error.contains("`escape`"), "{error}");
    }

    #[test]
    fn reserved_names_are_refused_with_another_one() {
        let error = check_name("test").unwrap_err();
        assert!(error.contains("`test-formatter`"), "{error}");
        assert!(check_name("shipper-sdk").is_err());
        assert!(check_name("fn").is_err());
    }

    #[test]
    fn a_project_is_written_into_a_new_or_empty_directory_only() {
        let temp = tempfile::tempdir().unwrap();
        let files = files::project(Lang::Python, "demo");
        write_project(temp.path(), "demo", &files).unwrap();
        let dir = temp.path().join("demo");
        assert!(dir.join("src/app.py").is_file());
        assert!(dir.join("sdk/shipper_sdk.py").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("test.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111, "test.sh is executable");
        }
        let error = check_target(&dir).unwrap_err().to_string();
        assert!(error.contains("is not empty"), "{error}");
        assert!(error.contains("choose another NAME"), "{error}");

        let empty = temp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        check_target(&empty).unwrap();
        write_project(temp.path(), "empty", &files).unwrap();
        assert!(empty.join("build.sh").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let file = temp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let error = check_target(&file).unwrap_err().to_string();
        assert!(error.contains("is not a directory"), "{error}");
    }
}
