//! `ui [--listen 127.0.0.1:0] [--no-open]`: starts the web UI on loopback, prints its address
//! with the access token, and opens the browser when there is a desktop to open it on.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use rust_i18n::t;
use tokio::net::TcpListener;

use super::{RunError, UsageError};
use crate::cli::{GlobalOptions, UiArgs};
use crate::config::Config;
use crate::printer::say;
use crate::ui::{UiState, serve};

pub(crate) async fn run(
    global: &GlobalOptions,
    args: &UiArgs,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    let address: SocketAddr = args
        .listen
        .parse()
        .map_err(|_| UsageError(t!("ui.not_loopback", address = args.listen).to_string()))?;
    // The token keeps other local users out; other machines must not reach it at all.
    if !address.ip().is_loopback() {
        return Err(UsageError(t!("ui.not_loopback", address = args.listen).to_string()).into());
    }
    let listener = TcpListener::bind(address).await.map_err(|e| {
        RunError(
            t!(
                "serve.bind_failed",
                address = args.listen,
                detail = e.to_string()
            )
            .to_string(),
        )
    })?;
    let config_path = Config::locate(global.config.as_deref()).ok().flatten();
    let state = Arc::new(UiState::new(
        config_path,
        config.clone(),
        crate::i18n::current_language().to_string(),
    ));
    let url = format!("http://{}/?token={}", listener.local_addr()?, state.token());
    say!("{}", t!("ui.listening", url = url));
    if !args.no_open {
        open_browser(&url);
    }
    serve(listener, state, super::stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Opens `url` in the desktop's browser, when there is a desktop. When that fails the user is
/// told to open the printed address by hand: on a jump host a double-clicked program whose
/// browser never appears would otherwise look broken.
fn open_browser(url: &str) {
    let command = if cfg!(windows) {
        // `start`'s first quoted argument is a window title; the empty one keeps the address
        // from being taken for it.
        Some(("cmd", vec!["/C", "start", "", url]))
    } else if cfg!(target_os = "macos") {
        Some(("open", vec![url]))
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        Some(("xdg-open", vec![url]))
    } else {
        None
    };
    let Some((program, arguments)) = command else {
        return;
    };
    let opener = tokio::process::Command::new(program)
        .args(arguments)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    tokio::spawn(async move {
        let opened = match opener {
            Ok(mut opener) => opener.wait().await.is_ok_and(|status| status.success()),
            Err(_) => false,
        };
        if !opened {
            say!("{}", t!("ui.browser_not_opened"));
        }
    });
}
