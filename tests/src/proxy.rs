//! A TCP forwarder a test can cut, refuse through, or stall, between a client and a
//! server.

use std::net::SocketAddr;

/// A TCP forwarder between a client and a server that a test can cut: `cut()` drops
/// every forwarded connection and refuses new ones until `restore()`.
pub struct Proxy {
    pub addr: SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let gen_tx = generation.clone();
        let is_open = open.clone();
        let is_stalled = stalled.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
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
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            open,
            stalled,
            generation,
        }
    }

    /// Cuts the connections and holds new ones open without an answer until `resume`.
    pub fn stall(&self) {
        self.stalled
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn resume(&self) {
        self.stalled
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
