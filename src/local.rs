//! The binary's one local process runner: runs what `dhow_core::secrets` asks for with
//! `std::process` (vault CLIs, `$(...)` commands from secrets files), reads the process
//! environment into the map the core expects, and runs the local docker as the source of
//! images a host cannot pull (`docker save`, streamed).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use dhow_core::Secret;
use dhow_core::secrets::{Invocation, Output, RunError, Runner, Stderr, Stdin};

/// Runs local programs. stdout is always captured (it carries secrets and is never logged);
/// stdin and stderr follow the invocation, so interactive sign-ins (`op signin`, `bw unlock`)
/// reach the user's terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalRunner;

impl Runner for LocalRunner {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError> {
        let program = invocation.program.clone();
        let mut command = Command::new(&invocation.program);
        command.args(&invocation.args).stdout(Stdio::piped());
        for (name, value) in &invocation.env {
            command.env(name, value.expose());
        }
        command.stdin(match invocation.stdin {
            Stdin::Inherit => Stdio::inherit(),
            Stdin::Null => Stdio::null(),
            Stdin::Data(_) => Stdio::piped(),
        });
        command.stderr(match invocation.stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Discard => Stdio::null(),
            Stderr::Capture => Stdio::piped(),
        });
        let mut child = command.spawn().map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => RunError::NotFound {
                program: program.clone(),
            },
            _ => RunError::Failed {
                program: program.clone(),
                message: error.to_string(),
            },
        })?;
        let writer = match (&invocation.stdin, child.stdin.take()) {
            (Stdin::Data(data), Some(mut pipe)) => {
                let data = data.clone();
                // A separate thread, so a child that writes a lot before reading cannot block us.
                Some(std::thread::spawn(move || {
                    let _ = pipe.write_all(data.expose().as_bytes());
                }))
            }
            _ => None,
        };
        let output = child.wait_with_output().map_err(|error| RunError::Failed {
            program: program.clone(),
            message: error.to_string(),
        })?;
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let stdout = String::from_utf8(output.stdout).map_err(|_| RunError::Failed {
            program: program.clone(),
            message: "it printed output that is not UTF-8 text".to_owned(),
        })?;
        Ok(Output {
            code: output.status.code(),
            stdout: Secret::new(stdout),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// The process environment as a map; variables whose name or value is not UTF-8 are left out.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_and_passes_stdin_env_and_stderr_modes() {
        let mut cat = Invocation::new("cat", Vec::<String>::new());
        cat.stdin = Stdin::Data(Secret::new("from stdin".to_owned()));
        let output = LocalRunner.run(&cat).unwrap();
        assert!(output.success());
        assert_eq!(output.stdout.expose(), "from stdin");

        let script = Invocation::shell("printf '%s' \"$BW_SESSION\"; echo oops >&2; exit 3")
            .with_env("BW_SESSION", Secret::new("sess".to_owned()))
            .stderr(Stderr::Capture);
        let output = LocalRunner.run(&script).unwrap();
        assert_eq!(output.code, Some(3));
        assert_eq!(output.stdout.expose(), "sess");
        assert_eq!(output.stderr, "oops\n");

        let quiet = Invocation::shell("echo hidden >&2").stderr(Stderr::Discard);
        assert_eq!(LocalRunner.run(&quiet).unwrap().stderr, "");
    }

    #[test]
    fn reports_missing_programs_and_non_utf8_output() {
        let missing = Invocation::new("dhow-no-such-program", ["--version"]);
        assert_eq!(
            LocalRunner.run(&missing).unwrap_err(),
            RunError::NotFound {
                program: "dhow-no-such-program".to_owned()
            }
        );
        let binary = Invocation::shell("printf '\\377'");
        assert!(matches!(
            LocalRunner.run(&binary),
            Err(RunError::Failed { .. })
        ));
    }

    #[test]
    fn reads_the_process_environment() {
        let env = process_env();
        assert!(env.contains_key("PATH"));
    }
}

/// The local docker CLI, where a host that cannot pull the proxy image gets it from.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalDocker;

fn shell(command: &dhow_core::cmd::Command) -> tokio::process::Command {
    let mut process = tokio::process::Command::new("sh");
    process
        .arg("-c")
        .arg(dhow_core::cmd::for_exec(command))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    process
}

fn docker_error(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        "there is no docker CLI here".to_owned()
    } else {
        format!("the local docker could not run: {error}")
    }
}

impl crate::deploy::LocalImages for LocalDocker {
    fn has<'a>(&'a self, image: &'a str) -> crate::deploy::HookFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let status = shell(&dhow_core::docker::proxy::image_present(image))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .map_err(|error| docker_error(&error))?;
            // `sh` answers 127 when it finds no docker.
            if status.code() == Some(127) {
                return Err("there is no docker CLI here".to_owned());
            }
            Ok(status.success())
        })
    }

    fn save(&self, save: &dhow_core::cmd::Command) -> Result<crate::deploy::LocalArchive, String> {
        let mut child = shell(save)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| docker_error(&error))?;
        let output = child
            .stdout
            .take()
            .ok_or_else(|| "docker save: no output pipe".to_owned())?;
        let mut stderr = child.stderr.take();
        let finished = Box::pin(async move {
            let mut message = String::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = tokio::io::AsyncReadExt::read_to_string(stderr, &mut message).await;
            }
            let status = child.wait().await.map_err(|error| error.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{status}: {}", message.trim()))
            }
        });
        Ok(crate::deploy::LocalArchive {
            output: Box::new(output),
            finished,
        })
    }
}
