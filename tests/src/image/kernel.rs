//! Fetches Debian's stock kernel package and picks the modules the guest needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `linux-image-amd64` depends on is the current Debian 12 kernel.
const META_PACKAGE: &str = "linux-image-amd64";

/// An extracted kernel package.
pub struct KernelTree {
    pub root: PathBuf,
    pub version: String,
    pub package: String,
}

impl KernelTree {
    pub fn vmlinuz(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.version))
    }

    fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.version)
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn kernel_package_name() -> Result<String, String> {
    let out = run(Command::new("apt-cache").args(["depends", META_PACKAGE]))?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .map(str::to_string)
        .ok_or_else(|| format!("apt-cache depends {META_PACKAGE} names no kernel:\n{out}"))
}

fn download(debs: &Path) -> Result<PathBuf, String> {
    let package = kernel_package_name()?;
    run(Command::new("apt-get")
        .args(["download", "-q", &package])
        .current_dir(debs))?;
    find_deb(debs).ok_or_else(|| {
        format!(
            "apt-get download {package} left no .deb in {}",
            debs.display()
        )
    })
}

fn find_deb(debs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(debs)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("linux-image-") && name.ends_with(".deb")
        })
}

/// Downloads the kernel package into `debs` (kept there, so a rebuild of the image does
/// not download again) and extracts it under `work`. Stale package lists are refreshed
/// once, as on a fresh machine whose lists are older than the archive.
pub fn fetch(debs: &Path, work: &Path) -> KernelTree {
    std::fs::create_dir_all(debs).expect("create deb cache");
    let deb = match find_deb(debs) {
        Some(deb) => deb,
        None => download(debs).unwrap_or_else(|first| {
            eprintln!("kernel download failed, running apt-get update: {first}");
            run(Command::new("apt-get").args(["update", "-q"])).unwrap_or_else(|e| panic!("{e}"));
            download(debs).unwrap_or_else(|e| panic!("cannot get the guest kernel: {e}"))
        }),
    };
    let root = work.join("kernel");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root)).unwrap_or_else(|e| panic!("{e}"));
    let version = std::fs::read_dir(root.join("lib/modules"))
        .expect("kernel package has lib/modules")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("kernel package has one module tree");
    let package = deb.file_name().unwrap().to_string_lossy().into_owned();
    KernelTree {
        root,
        version,
        package,
    }
}

/// Module names are spelled with '-' or '_' interchangeably; the kernel treats them alike.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// A module to load, in order.
pub struct Module {
    pub name: String,
    pub path: PathBuf,
}

/// The result of resolving the requested modules against one kernel.
pub struct ModuleSet {
    /// Loadable modules, every one after the modules it depends on.
    pub load_order: Vec<Module>,
    /// Requested names that this kernel has built in (nothing to load).
    pub builtin: Vec<String>,
}

/// Finds each requested module and everything it depends on (read from the module's own
/// `depends=` tag, since a package extracted with dpkg -x has no modules.dep).
pub fn resolve(tree: &KernelTree, requested: &[&str]) -> ModuleSet {
    let dir = tree.modules_dir();
    let builtin: BTreeSet<String> = std::fs::read_to_string(dir.join("modules.builtin"))
        .expect("modules.builtin")
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|f| normalize(f.trim_end_matches(".ko")))
        .collect();
    let mut files = BTreeMap::new();
    index_modules(&dir.join("kernel"), &mut files);

    let mut set = ModuleSet {
        load_order: Vec::new(),
        builtin: Vec::new(),
    };
    let mut done = BTreeSet::new();
    for name in requested {
        let name = normalize(name);
        if builtin.contains(&name) {
            set.builtin.push(name);
        } else {
            visit(
                &name,
                &files,
                &builtin,
                &mut done,
                &mut Vec::new(),
                &mut set.load_order,
            );
        }
    }
    set
}

fn index_modules(dir: &Path, files: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            index_modules(&path, files);
        } else if let Some(stem) = path
            .file_name()
            .unwrap()
            .to_str()
            .and_then(|n| n.strip_suffix(".ko"))
        {
            files.insert(normalize(stem), path.clone());
        }
    }
}

fn visit(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
    done: &mut BTreeSet<String>,
    stack: &mut Vec<String>,
    order: &mut Vec<Module>,
) {
    if done.contains(name) || builtin.contains(name) {
        return;
    }
    assert!(
        !stack.iter().any(|s| s == name),
        "module dependency cycle: {stack:?} -> {name}"
    );
    let path = files
        .get(name)
        .unwrap_or_else(|| panic!("module {name} is neither built in nor shipped by this kernel"));
    let image = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    stack.push(name.to_string());
    for dep in depends(&image) {
        visit(&normalize(&dep), files, builtin, done, stack, order);
    }
    stack.pop();
    done.insert(name.to_string());
    order.push(Module {
        name: name.to_string(),
        path: path.clone(),
    });
}

/// The comma-separated `depends=` entry of a module's .modinfo section, which is a run
/// of NUL-terminated `key=value` strings.
fn depends(module: &[u8]) -> Vec<String> {
    const TAG: &[u8] = b"\0depends=";
    let Some(start) = module.windows(TAG.len()).position(|w| w == TAG) else {
        return Vec::new();
    };
    let value = &module[start + TAG.len()..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_reads_the_modinfo_entry() {
        let blob = b"junk\0license=GPL\0depends=virtio,virtio_ring\0intree=Y\0";
        assert_eq!(depends(blob), vec!["virtio", "virtio_ring"]);
        assert!(depends(b"\0depends=\0name=x\0").is_empty());
        assert!(depends(b"no modinfo here").is_empty());
    }
}
