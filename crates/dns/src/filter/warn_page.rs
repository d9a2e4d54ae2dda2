//! The malware-site warning page (`reputation.warn-malware-site`): the filter answers a listed
//! site's name with mamori's address; the browser lands here and sees a warning with a
//! "continue anyway" link. Following it remembers the choice for this subscriber (or address) and
//! site, and redirects to the site, which the filter now resolves normally.
//!
//! A deliberately small HTTP/1.1 responder: one request per connection, bounded header size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::Filter;

const CONTINUE_PATH: &str = "/.mamori/continue";

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The site a request is for: its Host header without port, if it is a plausible name.
fn host_of(req: &str) -> Option<String> {
    let h = req.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
    })?;
    let h = h.split(':').next()?.to_ascii_lowercase();
    (!h.is_empty() && h.len() <= 253 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .then_some(h)
}

/// Builds the response to one request from `peer`.
pub fn respond(filter: &Filter, peer: SocketAddr, req: &str) -> String {
    let path = req.split_whitespace().nth(1).unwrap_or("/");
    let Some(site) = host_of(req) else {
        return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned();
    };
    if path == CONTINUE_PATH {
        filter.continue_anyway(peer.ip(), &site);
        return format!(
            "HTTP/1.1 303 See Other\r\nLocation: http://{site}/\r\nCache-Control: no-store\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    let s = html_escape(&site);
    let body = format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>警告 / Warning</title></head><body>\
         <h1>このサイトはマルウェア配布サイトとして報告されています</h1>\
         <p><b>{s}</b> is listed as a malware distribution site. Visiting it may infect your device.</p>\
         <p>ご契約の約款に基づく注意喚起です。この機能はいつでも停止（オプトアウト）できます。\
         This warning is part of your service terms; you can opt out at any time.</p>\
         <p><a href=\"{CONTINUE_PATH}\">それでも続ける / Continue anyway</a></p></body></html>"
    );
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves the page on `listen`.
pub async fn serve(filter: Arc<Filter>, listen: SocketAddr) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let l = TcpListener::bind(listen).await?;
    let local = l.local_addr()?;
    Ok((
        local,
        tokio::spawn(async move {
            loop {
                let Ok((mut s, peer)) = l.accept().await else { continue };
                let f = filter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while n < buf.len() {
                        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[n..])).await {
                            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                            Ok(Ok(k)) => n += k,
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let req = String::from_utf8_lossy(&buf[..n]);
                    let _ = s.write_all(respond(&f, peer, &req).as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        }),
    ))
}
