//! The guest image: Debian's kernel plus a busybox initramfs, built once and cached
//! under `target/guest/<key>/`, where the key changes whenever an input changes.

mod cpio;
mod kernel;

use crate::lock::FileLock;
use crate::paths::target_dir;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use cpio::Cpio;

/// Bump when the layout of the image changes in a way the other inputs do not show.
const FORMAT: &str = "vnf-guest-image-1";

const INIT: &str = include_str!("init.sh");

const BUSYBOX: &str = "/bin/busybox";

/// Loaded by /init in this order (their dependencies are added and ordered
/// automatically). Names a kernel has built in are skipped.
pub const MODULES: &[&str] = &[
    // virtio NIC
    "virtio_ring",
    "virtio",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    // 802.1Q and 802.1ad
    "llc",
    "stp",
    "garp",
    "mrp",
    "8021q",
];

/// A built guest image.
pub struct Image {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// E.g. `6.1.0-56-amd64`.
    pub kernel_version: String,
    /// Modules /init loads, in order.
    pub modules: Vec<String>,
    /// Requested modules that are built into this kernel.
    pub builtin: Vec<String>,
}

/// The image, building it on first use in this process (and only if no other process
/// has already cached it).
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let busybox = std::fs::read(BUSYBOX).unwrap_or_else(|e| {
            panic!("{BUSYBOX}: {e} (tests/install-deps.sh installs busybox-static)")
        });
        let key = cache_key(&busybox);
        let base = target_dir().join("guest");
        let dir = base.join(format!("{key:016x}"));
        let _lock = FileLock::acquire(&base.join(".lock"));
        if !dir.join("image.txt").exists() {
            build(&base, &dir, &busybox);
        }
        load(&dir)
    })
}

/// FNV-1a: stable across Rust releases, unlike std's hasher.
fn cache_key(busybox: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x100000001b3);
        }
    };
    feed(FORMAT.as_bytes());
    feed(INIT.as_bytes());
    for m in MODULES {
        feed(m.as_bytes());
    }
    feed(busybox);
    hash
}

fn build(base: &Path, dir: &Path, busybox: &[u8]) {
    let started = std::time::Instant::now();
    let work = base.join(format!("build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create image build directory");
    let tree = kernel::fetch(&base.join("debs"), &work);
    let modules = kernel::resolve(&tree, MODULES);

    let mut cpio = Cpio::new();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "etc",
        "etc/vnf",
        "lib",
        "lib/modules",
    ] {
        cpio.dir(d);
    }
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, busybox);
    cpio.symlink("bin/sh", "busybox");
    cpio.file("init", 0o755, INIT.as_bytes());
    let mut order = String::new();
    for m in &modules.load_order {
        let data = std::fs::read(&m.path).unwrap_or_else(|e| panic!("{}: {e}", m.path.display()));
        cpio.file(&format!("lib/modules/{}.ko", m.name), 0o644, &data);
        order.push_str(&m.name);
        order.push('\n');
    }
    cpio.file("etc/vnf/modules", 0o644, order.as_bytes());

    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&cpio.finish()).unwrap();
    let staging = work.join("image");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("initrd.gz"), gz.finish().unwrap()).unwrap();
    std::fs::copy(tree.vmlinuz(), staging.join("vmlinuz")).expect("copy vmlinuz");
    let info = format!(
        "kernel_version={}\npackage={}\nmodules={}\nbuiltin={}\n",
        tree.version,
        tree.package,
        order.trim_end().replace('\n', " "),
        modules.builtin.join(" "),
    );
    std::fs::write(staging.join("image.txt"), info).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&staging, dir).expect("move image into place");
    let _ = std::fs::remove_dir_all(&work);
    prune(base, dir);
    eprintln!(
        "built guest image {} in {:?}",
        dir.display(),
        started.elapsed()
    );
}

/// Removes images built from older inputs, which nothing will use again.
fn prune(base: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let is_image = name.len() == 16 && name.chars().all(|c| c.is_ascii_hexdigit());
        if is_image && path != keep {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn load(dir: &Path) -> Image {
    let info = std::fs::read_to_string(dir.join("image.txt")).expect("image.txt");
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_default()
            .to_string()
    };
    let words = |key: &str| field(key).split_whitespace().map(str::to_string).collect();
    Image {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.gz"),
        kernel_version: field("kernel_version"),
        modules: words("modules"),
        builtin: words("builtin"),
    }
}
