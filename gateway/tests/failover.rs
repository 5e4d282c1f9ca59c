//! A cluster of real processes: two gateways sharing Postgres and Redis, behind nginx
//! (Debian's `nginx-light`). The node running a lock-step session is killed with
//! SIGKILL mid-run; the client reconnects through nginx, resumes on the other node, and
//! the results equal an uninterrupted run.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::sma::{goog_start, in_process, Sma};
use support::{WsClient, JWT_SECRET, PEPPER};

const NGINX: &str = "/usr/sbin/nginx";

/// A gateway process; killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    port: u16,
    /// Lines the node printed after "listening".
    output: mpsc::Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cluster's shared environment.
struct Cluster {
    dir: tempfile::TempDir,
    database_url: String,
    admin: (String, String),
    redis_prefix: String,
}

impl Cluster {
    fn node(&self, name: &str) -> Node {
        let data = self.dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_simutrador-gateway"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs([
                ("SIMUTRADOR__SERVER__PORT", "0"),
                ("SIMUTRADOR__SERVER__COMPAT_PORT", "0"),
                ("SIMUTRADOR__SERVER__NODE_ID", name),
                ("SIMUTRADOR__DATA_DIR", data.to_str().unwrap()),
                ("SIMUTRADOR__DATABASE__URL", &self.database_url),
                ("SIMUTRADOR__SESSION_STORE__REDIS_URL", &redis_url()),
                ("SIMUTRADOR__SESSION_STORE__KEY_PREFIX", &self.redis_prefix),
                ("SIMUTRADOR__SESSION_STORE__LEASE_MS", "1500"),
                ("SIMUTRADOR__SESSION_STORE__CHECKPOINT_EVERY_TICKS", "300"),
                ("SIMUTRADOR__JWT__SECRET", JWT_SECRET),
                ("SIMUTRADOR__AUTH__API_KEY_PEPPER", PEPPER),
                (
                    "SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data"),
                ),
                ("RUST_LOG", "warn"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the gateway binary");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Drained to the end, so the gateway never writes into a closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("{name} did not start listening"));
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().parse().ok())
                    .expect("a port");
            }
        };
        Node {
            child,
            port,
            output: rx,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let (admin, name) = self.admin.clone();
        support::drop_database(admin, name);
    }
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// nginx in the foreground with everything under `dir`; killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn nginx(dir: &Path, upstreams: &[u16]) -> Nginx {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is required for the failover test: apt-get install nginx-light"
    );
    let port = free_port();
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n"))
        .collect();
    // Workers of an nginx started by root run as `nobody` unless told otherwise, and
    // could not use the temporary paths in the test's private directory.
    let user = if running_as_root() { "user root;" } else { "" };
    let conf = format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream gateways {{
    {servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
      proxy_read_timeout 3600s;
    }}
  }}
}}
"#
    );
    let path: PathBuf = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(NGINX)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start; see {d}/nginx-error.log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx { child, port }
}

async fn token(base: &str, key: &str) -> String {
    let mut res = awc::Client::new()
        .post(format!("{base}/auth/token"))
        .insert_header(("X-API-Key", key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// Which node owns `session_id` (its store key), from its lease in Redis
/// (`node:token`).
async fn owner(prefix: &str, session_id: &str) -> String {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let owner: String = redis::cmd("GET")
        .arg(format!("{prefix}:{{{session_id}}}:owner"))
        .query_async(&mut conn)
        .await
        .unwrap();
    owner.rsplit_once(':').unwrap().0.to_string()
}

#[actix_web::test]
async fn killing_the_node_of_a_session_resumes_it_on_the_other_through_nginx() {
    let (admin, name, database_url) = support::fresh_postgres().await;
    let cluster = Cluster {
        dir: tempfile::tempdir().unwrap(),
        database_url,
        admin: (admin, name.clone()),
        redis_prefix: format!("failover-{name}"),
    };
    let mut nodes = vec![Some(cluster.node("node-a"))];
    // The first node bootstraps the database and prints the demo key.
    let key = loop {
        let line = nodes[0]
            .as_ref()
            .unwrap()
            .output
            .recv_timeout(Duration::from_secs(10))
            .expect("the first node prints a demo key");
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("stk_")) {
            break k.to_string();
        }
    };
    nodes.push(Some(cluster.node("node-b")));
    let ports: Vec<u16> = nodes.iter().flatten().map(|n| n.port).collect();
    let lb = nginx(cluster.dir.path(), &ports);
    let base = format!("http://127.0.0.1:{}", lb.port);
    let token = token(&base, &key).await;

    let mut ws = WsClient::connect_to(&base, &token).await;
    let ready = ws.until("connection_ready").await;
    let sid = ws.start_session(goog_start()).await;
    let key = gateway::registry::store_key(ready["data"]["user_id"].as_str().unwrap(), &sid);
    let mut sma = Sma::default();
    assert!(sma.drive(&mut ws, &sid, |s| s == 1000).await.is_none());
    let victim = owner(&cluster.redis_prefix, &key).await;
    let index = if victim == "node-a" { 0 } else { 1 };
    // SIGKILL: no drain, no release, no last write.
    drop(nodes[index].take());
    let reconnect = Instant::now();
    ws = WsClient::connect_to(&base, &token).await;
    ws.until("connection_ready").await;
    ws.send(
        "resume_session",
        json!({"session_id": sid, "last_sequence_id": 1000, "epoch": 1}),
        Some("rs"),
    )
    .await;
    let resumed = ws.until("session_resumed").await;
    assert_eq!(resumed["data"]["resumed_from_sequence"], 1000);
    assert_eq!(resumed["data"]["epoch"], 1);
    assert_eq!(ws.recv().await.unwrap()["type"], "account_snapshot");
    eprintln!("reconnect to session_resumed: {:?}", reconnect.elapsed());
    assert_ne!(owner(&cluster.redis_prefix, &key).await, victim);
    sma.answer_pending(&mut ws, &sid).await;
    let end = sma
        .drive(&mut ws, &sid, |_| false)
        .await
        .expect("the run ends");
    let want = in_process();
    assert_eq!(end["data"]["final_equity"], "194777.00");
    assert_eq!(end["data"]["total_trades"], want.metrics.total_trades);
    drop(lb);
}
