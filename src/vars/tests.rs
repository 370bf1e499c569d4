use super::map::Key;
use super::*;

fn scope(maps: &[String]) -> Scope<'_> {
    Scope {
        maps,
        response: false,
        groups: 0,
    }
}

fn render(t: &str, facts: &Facts<'_>) -> String {
    Template::compile(t, scope(&[]))
        .unwrap()
        .render(facts)
        .into_owned()
}

#[test]
fn request_variables_render_as_nginx_does() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
    h.insert("user-agent", "curl/8".parse().unwrap());
    h.append("cookie", "a=1; sid=xyz".parse().unwrap());
    let m = Method::POST;
    let mut f = Facts::of(&m, &h, "/a/../b%20c?x=1&Y=2");
    f.host = Some("WWW.Example.com:8080");
    f.client = Some("192.0.2.9:5555".parse().unwrap());
    f.server = Some("127.0.0.1:8080".parse().unwrap());
    f.tls = true;
    f.request_id = Some("abc");
    assert_eq!(
        render("$scheme://$host$request_uri", &f),
        "https://www.example.com/a/../b%20c?x=1&Y=2"
    );
    assert_eq!(render("$uri$is_args$args", &f), "/b c?x=1&Y=2");
    assert_eq!(render("[$arg_x][$arg_y][$arg_z]", &f), "[1][2][]");
    assert_eq!(
        render("$remote_addr:$remote_port $server_addr:$server_port", &f),
        "192.0.2.9:5555 127.0.0.1:8080"
    );
    assert_eq!(render("${http_user_agent}x", &f), "curl/8x");
    assert_eq!(render("$cookie_sid/$cookie_none/", &f), "xyz//");
    assert_eq!(
        render("$proxy_add_x_forwarded_for", &f),
        "198.51.100.7, 192.0.2.9"
    );
    assert_eq!(render("$request_method $request_id", &f), "POST abc");
    assert_eq!(render("100$$ $$host", &f), "100$ $host");
}

#[test]
fn a_template_without_variables_borrows_its_text() {
    let t = Template::compile("max-age=60", scope(&[])).unwrap();
    assert_eq!(t.literal(), Some("max-age=60"));
    let h = HeaderMap::new();
    let m = Method::GET;
    assert!(matches!(
        t.render(&Facts::of(&m, &h, "/")),
        Cow::Borrowed("max-age=60")
    ));
    assert_eq!(
        Template::compile("", scope(&[])).unwrap().literal(),
        Some("")
    );
}

#[test]
fn bad_templates_say_what_is_wrong() {
    let err = |t: &str, s: Scope<'_>| Template::compile(t, s).unwrap_err();
    assert!(err("$hots", scope(&[])).contains("unknown variable `$hots`"));
    assert!(err("$hots", scope(&[])).contains("did you mean `host`"));
    assert!(err("a $ b", scope(&[])).contains("`$$`"));
    assert!(err("${host", scope(&[])).contains("without its"));
    assert!(err("$status", scope(&[])).contains("response"));
    assert!(err("/$1", scope(&[])).contains("rewrite.to"));
    let two = Scope {
        groups: 2,
        ..scope(&[])
    };
    assert!(err("/$2", two).contains("does not have"));
    assert!(Template::compile("/$1$host", two).is_ok());
    let resp = Scope {
        response: true,
        ..scope(&[])
    };
    assert!(Template::compile("$status $upstream_addr", resp).is_ok());
}

#[test]
fn maps_choose_exact_keys_then_regexes_in_order_then_the_default() {
    let names = vec!["backend".to_string()];
    let from = Template::compile("$cookie_ver", scope(&names)).unwrap();
    let map = Map::new(
        "backend".into(),
        from,
        vec![
            (Key::Exact("V1".into()), "app-v1".into()),
            (
                Key::Regex(regex::Regex::new("^v2").unwrap()),
                "app-v2".into(),
            ),
            (Key::Regex(regex::Regex::new("v").unwrap()), "app-v".into()),
        ],
        "app".into(),
    );
    assert_eq!(
        map.values()[map.choose("v1")],
        "app-v1",
        "exact keys ignore case"
    );
    assert_eq!(map.values()[map.choose("v2-beta")], "app-v2");
    assert_eq!(map.values()[map.choose("xv")], "app-v");
    assert_eq!(map.values()[map.choose("")], "app");

    let maps = [map];
    let t = Template::compile("[$backend]", scope(&names)).unwrap();
    let mut h = HeaderMap::new();
    h.insert("cookie", "ver=v2.1".parse().unwrap());
    let m = Method::GET;
    let mut f = Facts::of(&m, &h, "/");
    f.maps = &maps;
    assert_eq!(t.render(&f), "[app-v2]");
}

#[test]
fn header_values_never_fail() {
    assert_eq!(header_value("a\nb").to_str().unwrap(), "a%0Ab");
    assert_eq!(header_value("ok").to_str().unwrap(), "ok");
}
