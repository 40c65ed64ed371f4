//! TLS (`rediss://`) against a Redis of its own, with a throwaway CA.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use session_bridge_redis::fred::prelude::*;
use session_bridge_redis::fred::types::config::TlsConnector;
use session_bridge_redis::{RedisStore, recommended_builder};

/// A `redis-server` child, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=sb-test-ca",
    ]);
    run(dir, "openssl", &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(dir, "openssl", &csr);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
}

fn start_redis(dir: &Path, port: u16) -> Server {
    let port = port.to_string();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port,
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    Server(child)
}

fn tls_trusting(ca: &Path) -> TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).expect("read CA"))
        .expect("add CA");
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
        .into()
}

async fn pool(url: &str, tls: Option<TlsConnector>) -> Result<Pool, Error> {
    let mut config = Config::from_url(url)?;
    assert!(config.uses_tls(), "rediss:// turns TLS on");
    if let Some(tls) = tls {
        config.tls = Some(tls.into());
    }
    let pool = recommended_builder(config, Duration::from_secs(2)).build_pool(1)?;
    pool.init().await?;
    Ok(pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_verifies_the_server_and_works() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let port = session_bridge_conformance::closed_port();
    let _server = start_redis(dir.path(), port);
    let url = format!("rediss://127.0.0.1:{port}");

    let trusted = tls_trusting(&dir.path().join("ca.crt"));
    let mut connected = None;
    for _ in 0..50 {
        match pool(&url, Some(trusted.clone())).await {
            Ok(pool) => {
                connected = Some(pool);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let pool_ok = connected.expect("TLS connection with the test CA");

    // Without the test CA (system roots only) the server is not trusted.
    assert!(pool(&url, None).await.is_err(), "an unknown CA is rejected");

    let prefix = format!("{}:", session_bridge_conformance::unique("tls"));
    let store = RedisStore::new(pool_ok).with_key_prefix(prefix);
    session_bridge_conformance::create_load_save_delete(store.clone()).await;
    session_bridge_conformance::epoch_bumps_are_monotonic(store.clone()).await;
    session_bridge_conformance::changes_since_in_order(store).await;
}
