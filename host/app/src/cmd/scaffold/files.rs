//! What a generated project holds, per language: the templates under `host/app/templates/`,
//! the SDK sources and the WIT, all embedded in the binary so that `shipper plugin new`
//! works without a checkout of this repository.
//!
//! Templates get a tiny substitution (`{{name}}`, and the unit-test lines that only Rust
//! projects have); SDK sources, the WIT and the samples are written as they are.
//! Does not own: checking the name or writing to disk (the parent module).

use std::borrow::Cow;

/// `(path in the repository, contents)`, embedded at compile time.
macro_rules! repo_file {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)) as &[u8],
        )
    };
}

/// Every file of the Rust SDK's `sdk/src`, written to `shipper-sdk/src/`. A unit test checks
/// that no file under `sdk/src` is missing here.
const RUST_SDK: &[(&str, &[u8])] = &[
    repo_file!("sdk/src/batch.rs"),
    repo_file!("sdk/src/cef.rs"),
    repo_file!("sdk/src/config.rs"),
    repo_file!("sdk/src/decode.rs"),
    repo_file!("sdk/src/emit.rs"),
    repo_file!("sdk/src/flat.rs"),
    repo_file!("sdk/src/glue.rs"),
    repo_file!("sdk/src/host.rs"),
    repo_file!("sdk/src/json/mod.rs"),
    repo_file!("sdk/src/json/python.rs"),
    repo_file!("sdk/src/json/validate.rs"),
    repo_file!("sdk/src/json/value.rs"),
    repo_file!("sdk/src/json/write.rs"),
    repo_file!("sdk/src/leef.rs"),
    repo_file!("sdk/src/lib.rs"),
    repo_file!("sdk/src/mapping.rs"),
    repo_file!("sdk/src/syslog.rs"),
    repo_file!("sdk/src/testing.rs"),
    repo_file!("sdk/src/time.rs"),
];

/// The Python SDK (`sdk/python`), written to `sdk/`.
const PYTHON_SDK: &[(&str, &[u8])] = &[repo_file!("sdk/python/shipper_sdk.py")];

/// The JavaScript SDK (`sdk/js`), written to `sdk/`.
const JS_SDK: &[(&str, &[u8])] = &[
    repo_file!("sdk/js/python_json.js"),
    repo_file!("sdk/js/shipper_sdk.js"),
];

/// The C SDK (`sdk/c`), written to `sdk/`.
const C_SDK: &[(&str, &[u8])] = &[
    repo_file!("sdk/c/shipper_sdk.c"),
    repo_file!("sdk/c/shipper_sdk.h"),
];

const WIT: (&str, &[u8]) = repo_file!("wit/shipper.wit");

/// Shared by every language: the same plugin behaviour in each, so one golden file.
const SAMPLES: &[(&str, &[u8])] = &[
    repo_file!("host/app/templates/samples/input.jsonl"),
    repo_file!("host/app/templates/samples/config.json"),
    repo_file!("host/app/templates/samples/golden.txt"),
];

const TEST_SH: &str = include_str!("../../../templates/common/test.sh");
const README_COMMON: &str = include_str!("../../../templates/common/README.md");

/// The JavaScript plugin's pinned npm toolchain (componentize-js, jco); the C plugin uses
/// its `jco new`. The lock file is the example plugin's, so both pin the same tree.
const PACKAGE_JSON: &str = include_str!("../../../templates/node/package.json");
const PACKAGE_LOCK: &str = include_str!("../../../../../plugins/js-splunk-hec/package-lock.json");
/// The package name in [`PACKAGE_LOCK`], replaced by the plugin's.
const PACKAGE_LOCK_NAME: &str = "\"name\": \"shipper-plugin-js-splunk-hec\"";

/// wasmtime's WASI preview1 reactor adapter, which turns the C plugin's core module into a
/// component; its version must be the wasmtime shipper runs (docs/plugins.md §14).
const PREVIEW1_ADAPTER: &[u8] =
    wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

/// A plugin project's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the `shipper-sdk` crate (cargo, wasm32-wasip2).
    Rust,
    /// Python, with componentize-py.
    Python,
    /// JavaScript, with componentize-js.
    Js,
    /// C, with clang, wasi-libc and wit-bindgen.
    C,
}

impl Lang {
    /// Every language, for tests.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// The file a plugin author edits.
    pub fn source(self) -> &'static str {
        match self {
            Lang::Rust => "src/lib.rs",
            Lang::Python => "src/app.py",
            Lang::Js => "src/plugin.js",
            Lang::C => "src/plugin.c",
        }
    }

    /// What the templates' placeholders other than `{{name}}` become: only Rust has native
    /// unit tests (the other SDKs need their component toolchain's generated bindings).
    fn placeholders(self) -> [(&'static str, &'static str); 2] {
        match self {
            Lang::Rust => [
                (
                    "unit_tests",
                    "# Native unit tests (the `tests` module of src/lib.rs), without WebAssembly;\n\
                     # --release shares the bindings generator (a proc macro) with ./build.sh,\n\
                     # which halves the time of a first run.\n\
                     cargo test --release --quiet\n",
                ),
                (
                    "unit_tests_what",
                    "runs the native unit tests (`cargo test --release`), then ",
                ),
            ],
            Lang::Python | Lang::Js | Lang::C => [("unit_tests", ""), ("unit_tests_what", "")],
        }
    }

    /// The language's own files: `(path in the project, template)`.
    fn templates(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::Rust => &[
                (
                    "Cargo.toml",
                    include_str!("../../../templates/rust/Cargo.toml.tmpl"),
                ),
                (
                    "src/lib.rs",
                    include_str!("../../../templates/rust/src/lib.rs"),
                ),
                ("build.sh", include_str!("../../../templates/rust/build.sh")),
                (
                    "README.md",
                    include_str!("../../../templates/rust/README.md"),
                ),
                (
                    ".gitignore",
                    include_str!("../../../templates/rust/gitignore"),
                ),
                (
                    ".cargo/config.toml",
                    include_str!("../../../templates/rust/cargo-config.toml"),
                ),
                (
                    "shipper-sdk/Cargo.toml",
                    include_str!("../../../templates/rust/shipper-sdk.Cargo.toml"),
                ),
            ],
            Lang::Python => &[
                (
                    "src/app.py",
                    include_str!("../../../templates/python/src/app.py"),
                ),
                (
                    "build.sh",
                    include_str!("../../../templates/python/build.sh"),
                ),
                (
                    "README.md",
                    include_str!("../../../templates/python/README.md"),
                ),
                (
                    ".gitignore",
                    include_str!("../../../templates/python/gitignore"),
                ),
            ],
            Lang::Js => &[
                (
                    "src/plugin.js",
                    include_str!("../../../templates/js/src/plugin.js"),
                ),
                ("build.sh", include_str!("../../../templates/js/build.sh")),
                ("README.md", include_str!("../../../templates/js/README.md")),
                (
                    ".gitignore",
                    include_str!("../../../templates/js/gitignore"),
                ),
            ],
            Lang::C => &[
                (
                    "src/plugin.c",
                    include_str!("../../../templates/c/src/plugin.c"),
                ),
                ("build.sh", include_str!("../../../templates/c/build.sh")),
                ("README.md", include_str!("../../../templates/c/README.md")),
                (".gitignore", include_str!("../../../templates/c/gitignore")),
            ],
        }
    }

    /// The SDK files and where they go in the project.
    fn sdk(
        self,
    ) -> (
        &'static [(&'static str, &'static [u8])],
        &'static str,
        &'static str,
    ) {
        match self {
            Lang::Rust => (RUST_SDK, "sdk/", "shipper-sdk/"),
            Lang::Python => (PYTHON_SDK, "sdk/python/", "sdk/"),
            Lang::Js => (JS_SDK, "sdk/js/", "sdk/"),
            Lang::C => (C_SDK, "sdk/c/", "sdk/"),
        }
    }
}

/// One file of a generated project.
#[derive(Debug)]
pub struct File {
    /// Relative to the project directory, `/`-separated.
    pub path: String,
    /// What it holds.
    pub contents: Cow<'static, [u8]>,
    /// Whether it is a script to run (`build.sh`, `test.sh`).
    pub executable: bool,
}

impl File {
    fn new(path: impl Into<String>, contents: impl Into<Cow<'static, [u8]>>) -> Self {
        let path = path.into();
        let executable = path.ends_with(".sh");
        Self {
            path,
            contents: contents.into(),
            executable,
        }
    }
}

/// Every file of a new `lang` project named `name` (a name the caller has checked).
pub fn project(lang: Lang, name: &str) -> Vec<File> {
    let [(k1, v1), (k2, v2)] = lang.placeholders();
    let vars = [("name", name), (k1, v1), (k2, v2)];
    let render = |template: &str| render(template, &vars).into_bytes();

    let mut files = Vec::new();
    for (path, template) in lang.templates() {
        let mut text = render(template);
        if *path == "README.md" {
            text.extend(render(README_COMMON));
        }
        files.push(File::new(*path, text));
    }
    files.push(File::new("test.sh", render(TEST_SH)));
    files.push(File::new("wit/shipper.wit", WIT.1));
    for (path, contents) in SAMPLES {
        let file = path.rsplit('/').next().expect("a path has a last part");
        files.push(File::new(format!("samples/{file}"), *contents));
    }
    let (sdk, from, to) = lang.sdk();
    for (path, contents) in sdk {
        let rest = path
            .strip_prefix(from)
            .expect("SDK files sit below their directory");
        files.push(File::new(format!("{to}{rest}"), *contents));
    }
    if matches!(lang, Lang::Js | Lang::C) {
        files.push(File::new("package.json", render(PACKAGE_JSON)));
        let lock = PACKAGE_LOCK.replace(PACKAGE_LOCK_NAME, &format!("\"name\": \"{name}\""));
        files.push(File::new("package-lock.json", lock.into_bytes()));
    }
    if lang == Lang::C {
        files.push(File::new(
            "adapter/wasi_snapshot_preview1.reactor.wasm",
            PREVIEW1_ADAPTER,
        ));
    }
    files
}

/// Replaces every `{{key}}` of `vars` in `template`.
fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (key, value) in vars {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every file below `dir` (relative to the repository root), `/`-separated.
    fn files_below(dir: &str) -> BTreeSet<String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap();
                    out.insert(rel.to_str().unwrap().replace('\\', "/"));
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = BTreeSet::new();
        walk(root, &root.join(dir), &mut out);
        out
    }

    fn embedded(list: &[(&str, &[u8])]) -> BTreeSet<String> {
        list.iter().map(|(path, _)| (*path).to_owned()).collect()
    }

    #[test]
    fn every_file_of_the_rust_sdk_is_embedded() {
        assert_eq!(
            embedded(RUST_SDK),
            files_below("sdk/src"),
            "add the missing sdk/src files to RUST_SDK in {}",
            file!()
        );
    }

    #[test]
    fn every_file_of_the_other_sdks_is_embedded() {
        for (list, dir) in [
            (PYTHON_SDK, "sdk/python"),
            (JS_SDK, "sdk/js"),
            (C_SDK, "sdk/c"),
        ] {
            let mut on_disk = files_below(dir);
            on_disk.remove(&format!("{dir}/README.md"));
            on_disk.retain(|path| !path.contains("__pycache__"));
            assert_eq!(
                embedded(list),
                on_disk,
                "{dir}: update the list in {}",
                file!()
            );
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for lang in Lang::ALL {
            for file in project(lang, "my-plugin") {
                let is_template = !file.path.starts_with("shipper-sdk/")
                    && !file.path.starts_with("sdk/")
                    && !file.path.starts_with("adapter/");
                if is_template {
                    let text = String::from_utf8(file.contents.to_vec()).unwrap();
                    assert!(
                        !text.contains("{{"),
                        "{lang:?} {}: a placeholder is left:\n{text}",
                        file.path
                    );
                }
            }
        }
    }

    #[test]
    fn each_project_has_its_source_scripts_samples_sdk_and_wit() {
        for lang in Lang::ALL {
            let files = project(lang, "my-plugin");
            let paths: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
            for path in [
                lang.source(),
                "build.sh",
                "test.sh",
                "README.md",
                ".gitignore",
                "wit/shipper.wit",
                "samples/input.jsonl",
                "samples/config.json",
                "samples/golden.txt",
            ] {
                assert!(paths.contains(path), "{lang:?}: no {path} in {paths:?}");
            }
            assert_eq!(paths.len(), files.len(), "{lang:?}: a path repeats");
            let scripts: Vec<&str> = files
                .iter()
                .filter(|f| f.executable)
                .map(|f| f.path.as_str())
                .collect();
            assert_eq!(scripts, ["build.sh", "test.sh"], "{lang:?}");
        }
    }

    #[test]
    fn the_name_reaches_the_package_and_the_test_script() {
        let files = project(Lang::Rust, "acme-audit");
        let text = |path: &str| {
            let file = files.iter().find(|f| f.path == path).unwrap();
            String::from_utf8(file.contents.to_vec()).unwrap()
        };
        assert!(text("Cargo.toml").contains("name = \"acme-audit\""));
        assert!(text("test.sh").contains("--plugin acme-audit.wasm"));
        assert!(text("test.sh").contains("cargo test"));
        let python = project(Lang::Python, "acme-audit");
        let test = python.iter().find(|f| f.path == "test.sh").unwrap();
        assert!(!String::from_utf8_lossy(&test.contents).contains("cargo"));
    }

    /// The npm toolchain of the JavaScript and C templates is the example plugin's, so the
    /// versions pinned in the documentation cannot drift apart.
    #[test]
    fn the_npm_toolchain_is_the_example_plugins() {
        let dev_dependencies = |text: &str| {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            value["devDependencies"].clone()
        };
        let example = include_str!("../../../../../plugins/js-splunk-hec/package.json");
        assert_eq!(dev_dependencies(PACKAGE_JSON), dev_dependencies(example));
        let lock: serde_json::Value = serde_json::from_str(PACKAGE_LOCK).unwrap();
        assert_eq!(
            lock["packages"][""]["devDependencies"],
            dev_dependencies(example)
        );
        let files = project(Lang::Js, "acme-audit");
        let lock = files
            .iter()
            .find(|f| f.path == "package-lock.json")
            .unwrap();
        let lock: serde_json::Value = serde_json::from_slice(&lock.contents).unwrap();
        assert_eq!(lock["name"], "acme-audit");
        assert_eq!(lock["packages"][""]["name"], "acme-audit");
    }
}
