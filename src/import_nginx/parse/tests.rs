use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn directives_blocks_quotes_comments_and_includes() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "conf.d/b.conf",
        "upstream b { server 10.0.0.2:80; }\n",
    );
    write(
        dir.path(),
        "conf.d/a.conf",
        "upstream a {\n  server 10.0.0.1:80 weight=3;\n}\n",
    );
    write(dir.path(), "conf.d/skip.txt", "not included;\n");
    let main = write(
        dir.path(),
        "nginx.conf",
        "# top\nhttp {\n  include conf.d/*.conf;\n  server {\n    listen 80; # port\n    add_header X-A \"a b;c\";\n    return 301 'https://$host$request_uri';\n  }\n}\n",
    );
    let d = parse_file(&main).unwrap();
    assert_eq!(d.len(), 1);
    let http = d[0].block.as_ref().unwrap();
    assert_eq!(http[0].name, "upstream");
    assert_eq!(http[0].args, vec!["a"], "included in name order");
    assert_eq!(http[1].args, vec!["b"]);
    assert!(http[0].file.ends_with("conf.d/a.conf"));
    let server = http[2].block.as_ref().unwrap();
    assert_eq!((server[0].name.as_str(), server[0].line), ("listen", 5));
    assert_eq!(server[1].args, vec!["X-A", "a b;c"]);
    assert_eq!(server[2].args, vec!["301", "https://$host$request_uri"]);
}

#[test]
fn broken_files_are_errors_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("http {\n  server {\n", "not closed"),
        (
            "http {\n  listen 80\n}\n",
            ":2: `listen` is not ended by `;`",
        ),
        ("}\n", ":1: unexpected `}`"),
        ("add_header X \"open\n", ":1: a quoted string is not closed"),
    ] {
        let p = write(dir.path(), "bad.conf", text);
        let e = parse_file(&p).unwrap_err().0;
        assert!(e.contains(expected), "{text:?}: {e}");
    }
    // A missing include is kept, saying why, for the importer to report.
    let p = write(
        dir.path(),
        "inc.conf",
        "include missing.conf;\nworker_processes 2;\n",
    );
    let d = parse_file(&p).unwrap();
    assert_eq!((d[0].name.as_str(), d[0].line), ("include", 1));
    assert!(
        d[0].args[1].contains("missing.conf: No such file"),
        "{:?}",
        d[0].args
    );
    assert_eq!(d[1].name, "worker_processes");
    let looped = write(dir.path(), "loop.conf", "include loop.conf;\n");
    assert!(parse_file(&looped).unwrap_err().0.contains("nested"));
}

#[test]
fn odd_but_valid_input_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    for text in [
        "upstream a { server; }\nserver { listen; location { } return; }\n",
        "http { upstream { } server { location = { proxy_pass; } } }\n",
        "http { limit_req_zone; server { location / { limit_req; rewrite; add_header; allow; deny; proxy_pass http://; } } }\n",
        "\u{feff}# bom\nhttp{server{listen [::];server_name _;location /{proxy_pass http://[::1]:80/x/;}}}\n",
    ] {
        let p = write(dir.path(), "odd.conf", text);
        let imported = crate::import_nginx::import(&p).unwrap();
        // Something to write, or nothing to proxy to (and nothing written); never a
        // translation that `check` would refuse.
        assert!(!imported.yaml.is_empty() || imported.empty, "{text}");
        assert!(
            imported.invalid.is_empty(),
            "{text}: {:?}",
            imported.invalid
        );
    }
}

#[test]
fn random_nginx_shaped_text_is_parsed_or_refused_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let words = [
        "http",
        "server",
        "upstream",
        "location",
        "listen",
        "proxy_pass",
        "return",
        "{",
        "}",
        ";",
        "\"",
        "'",
        "#",
        "\n",
        " ",
        "80",
        "ssl",
        "http://a/",
        "=",
        "~",
        "/x/",
        "$host",
        "weight=",
        "include",
        "*.conf",
        "rewrite",
        "allow",
        "limit_req",
        "zone=z",
        "\\",
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let text: String = (0..rng.usize(0..60))
            .map(|_| words[rng.usize(0..words.len())])
            .collect::<Vec<_>>()
            .join(" ");
        let p = write(dir.path(), "r.conf", &text);
        if let Ok(imported) = crate::import_nginx::import(&p) {
            // The importer never writes what `check` refuses.
            assert!(
                imported.invalid.is_empty(),
                "{text:?}\n{:?}\n{}",
                imported.invalid,
                imported.yaml
            );
        }
    }
}

#[test]
fn generated_configs_never_translate_into_what_check_refuses() {
    // nginx-shaped configs made of real directives with plausible and odd arguments: the
    // importer reports what it cannot carry, but never writes a config `check` refuses.
    let dir = tempfile::tempdir().unwrap();
    let locations = [
        "/",
        "/api/",
        "= /x",
        "^~ /s/",
        "~ \\.php$",
        "~* \\.(png|jpg)$",
        "@app",
        "/a b",
    ];
    let directives = [
        "proxy_pass http://up",
        "proxy_pass http://up/",
        "proxy_pass http://up/v2/",
        "proxy_pass http://127.0.0.1:9000",
        "proxy_pass http://$m",
        "proxy_pass https://up",
        "proxy_set_header Host $host",
        "proxy_set_header X-A $http_x_b",
        "proxy_set_header X-U $upstream_cache_status",
        "proxy_set_header X-E \"\"",
        "add_header X-F $status always",
        "add_header X-G \"a b\"",
        "return 204",
        "return 200 \"hi $remote_addr\"",
        "return 301 https://$host$request_uri",
        "return 444",
        "return 302",
        "rewrite ^/(.*)$ /v/$1 break",
        "rewrite ^/a /b$2 last",
        "error_page 502 /50x.html",
        "error_page 404 =200 /x",
        "proxy_intercept_errors on",
        "allow 10.0.0.0/8",
        "deny all",
        "allow nonsense",
        "limit_req zone=z burst=5",
        "client_max_body_size 1m",
        "client_max_body_size lots",
        "root /srv",
        "proxy_read_timeout 5s",
        "proxy_next_upstream error http_502",
        "if ($http_x = 1) { return 403; }",
        "if ($request_method = POST) { proxy_pass http://up; }",
        "gzip on",
        "internal",
        "expires 1d",
        "expires max",
        "expires -1",
        "expires modified +1h",
        "alias /srv/a/",
        "index index.html home.htm",
        "index $x /abs.html",
        "try_files $uri $uri/ /index.html",
        "try_files $uri @app",
        "try_files $uri @nowhere",
        "try_files $uri =404",
        "try_files $uri",
        "try_files $nope =404",
        "gzip_static on",
        "autoindex on",
        "grpc_pass grpc://127.0.0.1:50051",
        "grpc_pass grpcs://up",
        "grpc_pass up",
        "grpc_pass unix:/run/g.sock",
        "proxy_pass http://unix:/run/a.sock",
        "proxy_pass http://unix:/run/a.sock:/x/",
        "proxy_pass http://unix:",
        "proxy_buffering off",
        "proxy_buffering maybe",
        "proxy_request_buffering off",
        "proxy_buffers 4 32k",
        "proxy_buffers x y",
        "proxy_buffer_size 16k",
        "set_real_ip_from 10.0.0.0/8",
        "set_real_ip_from nonsense",
        "set_real_ip_from unix:",
        "real_ip_header X-Forwarded-For",
        "real_ip_header proxy_protocol",
        "real_ip_header CF-Connecting-IP",
        "real_ip_recursive on",
    ];
    let stmt = |d: &str| {
        if d.ends_with('}') {
            d.to_string()
        } else {
            format!("{d};")
        }
    };
    let mut rng = fastrand::Rng::with_seed(22);
    for round in 0..2000 {
        let mut text = String::from("http {\n  map $cookie_v $m { default up; ~^2 up; }\n");
        text.push_str("  limit_req_zone $binary_remote_addr zone=z:1m rate=5r/s;\n");
        text.push_str(
            "  upstream up { server 127.0.0.1:3001 weight=2; server 127.0.0.1:3002 backup; }\n",
        );
        for server in 0..rng.usize(1..3) {
            text.push_str(&format!(
                "  server {{\n    listen {}{};\n",
                8000 + rng.usize(0..2),
                if rng.usize(0..4) == 0 {
                    " proxy_protocol"
                } else {
                    ""
                }
            ));
            if rng.bool() {
                text.push_str(&format!("    server_name s{server}.example;\n"));
            }
            for _ in 0..rng.usize(0..3) {
                text.push_str(&format!(
                    "    {}\n",
                    stmt(directives[rng.usize(0..directives.len())])
                ));
            }
            for _ in 0..rng.usize(0..4) {
                text.push_str(&format!(
                    "    location {} {{\n",
                    locations[rng.usize(0..locations.len())]
                ));
                for _ in 0..rng.usize(0..4) {
                    text.push_str(&format!(
                        "      {}\n",
                        stmt(directives[rng.usize(0..directives.len())])
                    ));
                }
                text.push_str("    }\n");
            }
            text.push_str("  }\n");
        }
        text.push_str("}\n");
        let p = write(dir.path(), "gen.conf", &text);
        let imported =
            crate::import_nginx::import(&p).unwrap_or_else(|e| panic!("{round}: {e}\n{text}"));
        assert!(
            imported.invalid.is_empty(),
            "round {round}:\n{text}\n{:?}\n{}",
            imported.invalid,
            imported.yaml
        );
    }
}

#[test]
fn wildcards() {
    assert!(wildcard("*.conf", "a.conf"));
    assert!(!wildcard("*.conf", "a.conf.bak"));
    assert!(wildcard("site-?", "site-1"));
    assert!(wildcard("*", "anything"));
}
