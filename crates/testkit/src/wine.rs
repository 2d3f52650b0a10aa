//! The Windows build of the binary, run under Wine: what a user on a Windows jump host gets.
//!
//! `scripts/wine-tests.sh` builds the .exe, puts the test-only `bcryptprimitives.dll` beside it
//! (Wine 8 lacks the one Rust's standard library needs; Windows 10 and later have it), prepares
//! a Wine prefix and runs the tests that use this, with `IMAGE_TRANSMIT_WINDOWS_EXE` naming the
//! .exe. Those tests are ignored in a plain `cargo test`, which has no Windows build to run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable that names the .exe under test.
pub const WINDOWS_EXE: &str = "IMAGE_TRANSMIT_WINDOWS_EXE";

/// The Windows .exe and the Wine that runs it.
#[derive(Debug, Clone)]
pub struct WindowsExe {
    exe: PathBuf,
}

impl WindowsExe {
    /// The .exe that [`WINDOWS_EXE`] names; panics, saying how to build it, when there is none.
    #[track_caller]
    pub fn from_env() -> WindowsExe {
        let exe = std::env::var_os(WINDOWS_EXE)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!("{WINDOWS_EXE} is not set: run these tests with scripts/wine-tests.sh")
            });
        assert!(exe.is_file(), "{} does not exist", exe.display());
        WindowsExe { exe }
    }

    /// The .exe's path.
    pub fn path(&self) -> &Path {
        &self.exe
    }

    /// Copies the .exe, and the DLLs beside it, into `folder`: a program a user unpacked there.
    pub fn install_into(&self, folder: &Path) -> WindowsExe {
        std::fs::create_dir_all(folder).unwrap();
        let from = self.exe.parent().unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            if path == self.exe || path.extension().is_some_and(|extension| extension == "dll") {
                std::fs::copy(&path, folder.join(path.file_name().unwrap())).unwrap();
            }
        }
        WindowsExe {
            exe: folder.join(self.exe.file_name().unwrap()),
        }
    }

    /// `wine64 image-transmit.exe` started in `dir`, in English, with Wine's own chatter off and
    /// no Docker login; the test adds the arguments.
    ///
    /// `LANG` is `C.UTF-8`, the one UTF-8 locale every Debian has: Wine turns Unix file names
    /// and the working directory into Windows ones through the locale's character set, and an
    /// ASCII one would mangle the Chinese names the tests use. A test that wants Chinese
    /// messages sets the program's own `lang` variable.
    pub fn command(&self, dir: &Path) -> Command {
        let mut command = Command::new(wine());
        command.arg(&self.exe);
        in_test_environment(&mut command, dir);
        command
    }

    /// The .exe with `args` on a console, as typed at a Command Prompt, under `ctrl-c.exe` (built
    /// beside it by `scripts/wine-tests.sh`): Ctrl-C is pressed once the test creates the file
    /// `dir/press-ctrl-c`, and the exit status is the program's. Run under `script`, since Wine
    /// gives programs a console only on a terminal; what they print comes with its escapes.
    pub fn command_with_ctrl_c(&self, dir: &Path, args: &[&str]) -> Command {
        let mut windows_line = format!("\"{}\"", windows_path(&self.exe));
        for argument in args {
            assert!(
                !argument.contains([' ', '"']),
                "{argument}: only plain arguments"
            );
            windows_line.push(' ');
            windows_line.push_str(argument);
        }
        let helper = self.exe.with_file_name("ctrl-c.exe");
        let shell_line = [
            wine().to_string_lossy().into_owned(),
            helper.display().to_string(),
            windows_line,
        ]
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .join(" ");
        let mut command = Command::new("script");
        command.args(["-qec", &shell_line, "/dev/null"]);
        in_test_environment(&mut command, dir);
        command
    }
}

fn wine() -> std::ffi::OsString {
    std::env::var_os("WINE").unwrap_or_else(|| "/usr/lib/wine/wine64".into())
}

fn in_test_environment(command: &mut Command, dir: &Path) {
    command
        .current_dir(dir)
        .env("WINEDEBUG", "-all")
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("lang")
        .env("DOCKER_CONFIG", dir.join("no-docker-config"));
}

/// How Windows names `path` on Wine's drive Z: (the Unix root): `Z:\tmp\…`, so tests can pass
/// paths the way a Windows user types them.
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}
