//! Writes the "newc" cpio format that the kernel unpacks as an initramfs.
//!
//! Written here rather than shelling out to cpio(1) so that device nodes and ownership
//! come out right without root-owned staging files.

const TRAILER: &str = "TRAILER!!!";

pub struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
}

impl Default for Cpio {
    fn default() -> Self {
        Cpio::new()
    }
}

impl Cpio {
    pub fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            next_ino: 1,
        }
    }

    pub fn dir(&mut self, path: &str) {
        self.entry(path, libc::S_IFDIR | 0o755, 0, &[]);
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.entry(path, libc::S_IFREG | perm, 0, data);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, libc::S_IFLNK | 0o777, 0, target.as_bytes());
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.entry(path, libc::S_IFCHR | perm, (major << 20) | minor, &[]);
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, 0, &[]);
        self.out
    }

    /// `rdev` packs major in the high 12 bits and minor in the low 20 bits, only to pass
    /// both through one argument.
    fn entry(&mut self, path: &str, mode: u32, rdev: u32, data: &[u8]) {
        let path = path.trim_start_matches('/');
        let ino = if path == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let nlink = if mode & libc::S_IFMT == libc::S_IFDIR {
            2
        } else {
            1
        };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed so that the same inputs give the same archive
            u32::try_from(data.len()).expect("initramfs member under 4 GiB"),
            0, // devmajor
            0, // devminor
            rdev >> 20,
            rdev & 0xfffff,
            u32::try_from(path.len() + 1).expect("short path"),
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.out.extend_from_slice(path.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// GNU cpio is an independent reader of the format.
    fn list_with_cpio(archive: &[u8]) -> String {
        let mut child = Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cpio(1) is installed by tests/install-deps.sh");
        child.stdin.take().unwrap().write_all(archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "cpio -t failed");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn gnu_cpio_reads_every_kind_of_member() {
        let mut cpio = Cpio::new();
        cpio.dir("bin");
        cpio.file("bin/hello", 0o755, b"hello world\n");
        cpio.symlink("bin/sh", "hello");
        cpio.dir("dev");
        cpio.char_dev("dev/console", 0o600, 5, 1);
        cpio.file("empty", 0o644, b"");
        let listing = list_with_cpio(&cpio.finish());
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 6, "{listing}");
        assert!(
            lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" bin"),
            "{listing}"
        );
        assert!(
            lines[1].starts_with("-rwxr-xr-x") && lines[1].contains(" 12 "),
            "{listing}"
        );
        assert!(
            lines[2].starts_with("lrwxrwxrwx") && lines[2].ends_with("bin/sh -> hello"),
            "{listing}"
        );
        assert!(
            lines[4].starts_with("crw-------") && lines[4].contains("5,"),
            "{listing}"
        );
        assert!(lines[4].ends_with("dev/console"), "{listing}");
        assert!(
            lines[5].starts_with("-rw-r--r--") && lines[5].ends_with(" empty"),
            "{listing}"
        );
    }

    #[test]
    fn members_and_archive_are_four_byte_aligned() {
        let mut cpio = Cpio::new();
        cpio.file("a", 0o644, b"xyz");
        let archive = cpio.finish();
        assert_eq!(archive.len() % 4, 0);
        // Header (110) + "a\0" padded to 112, then 3 data bytes padded to 116.
        assert_eq!(&archive[116..122], b"070701");
    }
}
