//! Build script: computes the behaviour fingerprint of this build, a stable hash of the source
//! files of the crates whose code decides what a run does (`node`, `faults`, `harness`), and
//! exposes it to the crate as `SHARDSTORM_BUILD` (16 hex digits).
//!
//! Files are hashed in sorted order of their path relative to the workspace root (with `/`
//! separators), each as its path, its length and its bytes with `\r\n` read as `\n`, so the
//! fingerprint is the same on every machine and checkout of the same sources. The hash is
//! 64-bit FNV-1a: no dependency, stable across Rust releases (unlike `DefaultHasher`). It
//! identifies sources, it is not a security measure.

use std::path::{Path, PathBuf};

/// The source directories hashed, relative to the workspace root.
const SOURCE_DIRS: [&str; 3] = ["node/src", "faults/src", "harness/src"];

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit FNV-1a hasher.
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// Writes a length prefix, then the bytes, so concatenations cannot collide.
    fn write_framed(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }
}

/// Every file under `dir`, recursively; unreadable entries are reported and skipped.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            println!(
                "cargo:warning=build fingerprint: cannot list {}: {e}",
                dir.display()
            );
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// The path of `file` relative to `root`, with `/` separators.
fn relative(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// The file's bytes with every `\r\n` read as `\n`.
fn normalized(bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.contains(&b'\r') {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'\r' || bytes.get(i + 1) != Some(&b'\n') {
            out.push(b);
        }
    }
    out
}

/// The fingerprint of the sources under `SOURCE_DIRS` of the workspace at `root`.
fn fingerprint(root: &Path) -> u64 {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for dir in SOURCE_DIRS {
        let mut found = Vec::new();
        files_under(&root.join(dir), &mut found);
        files.extend(found.into_iter().map(|f| (relative(root, &f), f)));
    }
    files.sort();
    let mut hash = Fnv(FNV_OFFSET);
    for (name, path) in files {
        match std::fs::read(&path) {
            Ok(bytes) => {
                hash.write_framed(name.as_bytes());
                hash.write_framed(&normalized(bytes));
            }
            Err(e) => println!("cargo:warning=build fingerprint: cannot read {name}: {e}"),
        }
    }
    hash.0
}

fn main() {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let root = manifest
        .parent()
        .map_or_else(|| manifest.clone(), Path::to_path_buf);
    println!("cargo:rerun-if-changed=build.rs");
    for dir in SOURCE_DIRS {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rustc-env=SHARDSTORM_BUILD={:016x}",
        fingerprint(&root)
    );
}
