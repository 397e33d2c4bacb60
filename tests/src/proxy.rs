//! A TCP forwarder between a client and a server that a test can cut, refuse through,
//! stall, or make swallow the server's answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP forwarder between a client and a server:
///
/// - `cut()` drops every forwarded connection and refuses new ones until `restore()`;
/// - `stall()` drops them and then accepts new ones without ever answering (a hung
///   server) until `resume()`;
/// - `mute()` swallows the server's answers on every connection (requests still reach
///   the server and are applied: the client sees writes that happened as lost). A
///   connection that swallowed an answer stays mute until it is cut (its byte stream
///   lost a piece; resuming it would garble the frames): `unmute()` only spares new
///   connections. `lose_answers(span)` does mute, wait, cut, unmute.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    muted: Arc<AtomicBool>,
    swallowed: Arc<AtomicU64>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let stalled = Arc::new(AtomicBool::new(false));
        let muted = Arc::new(AtomicBool::new(false));
        let swallowed = Arc::new(AtomicU64::new(0));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let gen_tx = generation.clone();
        let (is_open, is_stalled, is_muted, swallow_count) = (
            open.clone(),
            stalled.clone(),
            muted.clone(),
            swallowed.clone(),
        );
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if !is_open.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                if is_stalled.load(Ordering::SeqCst) {
                    // Accepted, then never answered nor closed: a server that hangs.
                    held.push(inbound);
                    continue;
                }
                let target = target.clone();
                let mut cut = gen_tx.subscribe();
                let (muted, swallowed) = (is_muted.clone(), swallow_count.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = outbound.set_nodelay(true);
                    let _ = inbound.set_nodelay(true);
                    let (mut client_rx, mut client_tx) = inbound.into_split();
                    let (mut server_rx, mut server_tx) = outbound.into_split();
                    let requests = tokio::io::copy(&mut client_rx, &mut server_tx);
                    let answers = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut mute = false;
                        loop {
                            let n = server_rx.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            mute |= muted.load(Ordering::SeqCst);
                            if mute {
                                swallowed.fetch_add(n as u64, Ordering::SeqCst);
                            } else {
                                client_tx.write_all(&buf[..n]).await?;
                            }
                        }
                    };
                    tokio::select! {
                        _ = requests => {}
                        _ = answers => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            open,
            stalled,
            muted,
            swallowed,
            generation,
        }
    }

    /// Cuts the connections and holds new ones open without an answer until `resume`.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// Drops every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.drop_connections();
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Drops every connection (new ones are accepted).
    pub fn drop_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// From now on, the server's answers are swallowed (see the type's doc).
    pub fn mute(&self) {
        self.muted.store(true, Ordering::SeqCst);
    }

    /// New connections forward answers again; muted ones stay mute until cut.
    pub fn unmute(&self) {
        self.muted.store(false, Ordering::SeqCst);
    }

    /// Bytes of answers swallowed so far.
    pub fn swallowed(&self) -> u64 {
        self.swallowed.load(Ordering::SeqCst)
    }

    /// Swallows the answers for `span`, then drops every connection (requests sent
    /// meanwhile were applied; their callers see ConnectionLoss).
    pub async fn lose_answers(&self, span: Duration) {
        self.mute();
        tokio::time::sleep(span).await;
        self.drop_connections();
        self.unmute();
    }
}
