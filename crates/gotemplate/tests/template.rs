use berth_gotemplate::{render_header, strip_table_prefix, Template, TemplateError};
use serde_json::{json, Value};

fn run(tpl: &str, data: &Value) -> String {
    match Template::parse(tpl) {
        Ok(t) => match t.execute(data) {
            Ok(s) => s,
            Err(e) => panic!("execute {tpl:?}: {e}"),
        },
        Err(e) => panic!("parse {tpl:?}: {e}"),
    }
}

fn exec_err(tpl: &str, data: &Value) -> String {
    let t = Template::parse(tpl).unwrap_or_else(|e| panic!("parse {tpl:?}: {e}"));
    match t.execute(data) {
        Err(e @ TemplateError::Exec(_)) => e.to_string(),
        other => panic!("expected exec error for {tpl:?}, got {other:?}"),
    }
}

fn parse_err(tpl: &str) -> String {
    match Template::parse(tpl) {
        Err(e @ TemplateError::Parse(_)) => e.to_string(),
        other => panic!("expected parse error for {tpl:?}, got {other:?}"),
    }
}

fn image() -> Value {
    json!({
        "ID": "sha256:abc",
        "Repository": "alpine",
        "Tag": "3.19",
        "RepoTags": ["alpine:3.19", "alpine:latest"],
        "Size": 7_340_032,
        "Ratio": 1.5,
        "Names": ["web", "frontend"],
        "Config": {
            "Labels": {"a.b": "c", "maintainer": "me <me@example.com>"},
            "Env": ["PATH=/bin", "A=1"],
            "Cmd": null
        },
        "State": {"Status": "running", "Running": true, "ExitCode": 0, "Health": null},
        "Empty": [],
        "EmptyMap": {},
        "Zero": 0,
        "Blank": ""
    })
}

// ---------------------------------------------------------------- docker examples

#[test]
fn docker_examples() {
    let d = image();
    assert_eq!(run(r"{{.ID}}\t{{.Repository}}", &d), "sha256:abc\talpine");
    assert_eq!(run(r#"{{index .Config.Labels "a.b"}}"#, &d), "c");
    assert_eq!(
        run("{{range .RepoTags}}{{.}} {{end}}", &d),
        "alpine:3.19 alpine:latest "
    );
    assert_eq!(run(r#"{{join .Names ","}}"#, &d), "web,frontend");
    assert_eq!(run("{{.State.Status}}", &d), "running");
    let state = run("{{json .State}}", &d);
    assert!(!state.contains(' ') && !state.ends_with('\n'));
    assert_eq!(
        serde_json::from_str::<Value>(&state).unwrap(),
        json!({"Status": "running", "Running": true, "ExitCode": 0, "Health": null})
    );
}

#[test]
fn json_whole_value() {
    let d = json!({"b": [1, 2.5, "x"], "a": {"k": null}, "t": true});
    // members keep the value's own order, like a Go struct
    let out = run("{{json .}}", &d);
    let back: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(back, d);
    assert!(!out.ends_with('\n'));
    assert_eq!(run("{{json .b}}", &d), "[1,2.5,\"x\"]");
    assert_eq!(run("{{json 1e6}}", &d), "1000000");
    assert_eq!(run("{{json .missing}}", &d), "null");
    assert_eq!(run(r#"{{json "a\tb\"c\\"}}"#, &d), r#""a\tb\"c\\""#);
}

#[test]
fn json_is_not_html_escaped_like_docker_cli() {
    // The docker CLI's json function disables HTML escaping.
    let d = image();
    assert_eq!(
        run(r#"{{json (index .Config.Labels "maintainer")}}"#, &d),
        r#""me <me@example.com>""#
    );
    assert_eq!(run(r#"{{json "a&b"}}"#, &d), r#""a&b""#);
    assert_eq!(run("{{json \"\u{2028}\"}}", &d), r#""\u2028""#);
}

#[test]
fn table_prefix_and_header() {
    assert_eq!(strip_table_prefix("table {{.ID}}"), (true, "{{.ID}}"));
    assert_eq!(strip_table_prefix("table\t{{.ID}}"), (true, "{{.ID}}"));
    assert_eq!(strip_table_prefix("table"), (true, ""));
    assert_eq!(strip_table_prefix("{{.ID}}"), (false, "{{.ID}}"));
    let (table, rest) = strip_table_prefix(r"table {{.ID}}\t{{.Names}}");
    assert!(table);
    let header = |f: &str| match f {
        "ID" => "CONTAINER ID".to_string(),
        other => other.to_uppercase(),
    };
    assert_eq!(render_header(rest, &header).unwrap(), "CONTAINER ID\tNAMES");
    // docker functions leave headers intact; pad still pads
    assert_eq!(
        render_header(r#"{{json .ID}}|{{upper .Repository}}|{{truncate .Tag 1}}|{{join .Names ","}}|{{pad .Size 1 1}}"#, &header)
            .unwrap(),
        "CONTAINER ID|REPOSITORY|TAG|NAMES| SIZE "
    );
    assert_eq!(
        render_header(r#"{{printf "%-15s" .ID}}x"#, &header).unwrap(),
        "CONTAINER ID   x"
    );
    assert_eq!(
        render_header("{{.ID}} text", &header).unwrap(),
        "CONTAINER ID text"
    );
    assert!(render_header("{{.ID", &header).is_err());
}

// ---------------------------------------------------------------- language

#[test]
fn text_dot_and_fields() {
    let d = image();
    assert_eq!(run("plain text", &d), "plain text");
    assert_eq!(run("a}}b{{\"}}\"}}", &d), "a}}b}}");
    assert_eq!(run("", &d), "");
    assert_eq!(run("{{.}}", &json!("hi")), "hi");
    assert_eq!(
        run("{{.Config.Labels.maintainer}}", &d),
        "me <me@example.com>"
    );
    assert_eq!(run("{{.Nope}}", &d), "<no value>");
    assert_eq!(run("{{.Nope.Deeper}}", &d), "<no value>");
    assert_eq!(run("{{.Config.Cmd}}", &d), "<no value>");
    assert_eq!(run("{{$.Repository}}", &d), "alpine");
    assert_eq!(run("{{with .State}}{{$.Repository}}{{end}}", &d), "alpine");
}

#[test]
fn printing_like_go_fmt() {
    let d = json!({
        "i": 42, "neg": -7, "f": 1.5, "big": 1000000.0, "whole": 2.0, "t": true,
        "n": null, "arr": ["a", "b", 3], "obj": {"z": 1, "a": "x", "m": {"k": [1]}},
        "u": 18_446_744_073_709_551_615u64
    });
    assert_eq!(
        run("{{.i}} {{.neg}} {{.f}} {{.big}} {{.whole}}", &d),
        "42 -7 1.5 1e+06 2"
    );
    assert_eq!(run("{{.t}} {{.n}}", &d), "true <no value>");
    assert_eq!(run("{{.arr}}", &d), "[a b 3]");
    assert_eq!(run("{{.obj}}", &d), "map[a:x m:map[k:[1]] z:1]");
    assert_eq!(run("{{.u}}", &d), "18446744073709551615");
    assert_eq!(
        run(
            "{{1.25}} {{0.000001}} {{-3}} {{0x1F}} {{'a'}} {{1_000}}",
            &d
        ),
        "1.25 1e-06 -3 31 97 1000"
    );
}

#[test]
fn literals() {
    let d = json!({});
    assert_eq!(run(r#"{{"quoted\tstr\u00e9"}}"#, &d), "quoted\tstré");
    assert_eq!(run("{{`raw\\t`}}", &d), "raw\t"); // \t replaced before parsing
    assert_eq!(run("{{`raw\\x`}}", &d), "raw\\x");
    assert_eq!(run("{{true}} {{false}}", &d), "true false");
    assert_eq!(run("{{print nil}}", &d), "<nil>");
    assert!(exec_err("{{nil}}", &d).contains("nil is not a command"));
}

#[test]
fn escapes_replaced_before_parsing() {
    let d = json!({"A": "x", "B": "y"});
    assert_eq!(run(r"{{.A}}\t{{.B}}\n", &d), "x\ty\n");
    assert_eq!(run(r"a\\tb", &d), "a\\\tb");
    assert_eq!(run(r"\x", &d), "\\x");
}

#[test]
fn variables() {
    let d = image();
    assert_eq!(run("{{$x := .Repository}}{{$x}}", &d), "alpine");
    assert_eq!(run("{{$x := 1}}{{$x = 2}}{{$x}}", &d), "2");
    assert_eq!(
        run("{{$c := .Config}}{{$c.Labels.maintainer}}", &d),
        "me <me@example.com>"
    );
    assert_eq!(
        run("{{$x := 0}}{{range .Names}}{{$x = .}}{{end}}{{$x}}", &d),
        "frontend"
    );
    assert_eq!(run("{{$}}", &json!(5)), "5");
    assert!(parse_err("{{$nope}}").contains("undefined variable \"$nope\""));
    // scoped to the enclosing block
    assert!(parse_err("{{if true}}{{$x := 1}}{{end}}{{$x}}").contains("undefined variable"));
    assert_eq!(
        run("{{if $v := .State.Status}}{{$v}}{{end}}", &d),
        "running"
    );
}

#[test]
fn pipelines() {
    let d = image();
    assert_eq!(run("{{.Repository | upper}}", &d), "ALPINE");
    assert_eq!(
        run("{{.Repository | printf \"%s:%s\" .Tag}}", &d),
        "3.19:alpine"
    );
    assert_eq!(run("{{.Names | json}}", &d), "[\"web\",\"frontend\"]");
    assert_eq!(run(r#"{{.Repository | printf "%q" | len}}"#, &d), "8");
    assert_eq!(run(r#"{{(index .Names 1) | upper}}"#, &d), "FRONTEND");
    assert_eq!(run(r#"{{len (split .Tag ".")}}"#, &d), "2");
}

#[test]
fn parenthesised_chains() {
    let d = json!({"List": [{"Name": "first"}, {"Name": "second"}], "M": {"k": {"v": 3}}});
    assert_eq!(run("{{(index .List 1).Name}}", &d), "second");
    assert_eq!(run(r#"{{(index .M "k").v}}"#, &d), "3");
    assert_eq!(run("{{(.M).k.v}}", &d), "3");
}

#[test]
fn conditionals() {
    let d = image();
    assert_eq!(run("{{if .State.Running}}up{{else}}down{{end}}", &d), "up");
    assert_eq!(
        run(
            "{{if .Zero}}a{{else if .Blank}}b{{else if .Names}}c{{else}}d{{end}}",
            &d
        ),
        "c"
    );
    assert_eq!(
        run("{{if .Empty}}a{{else if .EmptyMap}}b{{else}}c{{end}}", &d),
        "c"
    );
    assert_eq!(run("{{if .Nope}}a{{else}}b{{end}}", &d), "b");
    assert_eq!(run("{{if .Config.Cmd}}a{{else}}b{{end}}", &d), "b");
    assert_eq!(run("{{if 1.5}}y{{end}}{{if 0.0}}n{{end}}", &d), "y");
    assert_eq!(run("{{if not .State.Running}}a{{else}}b{{end}}", &d), "b");
    assert_eq!(
        run(r#"{{if eq .State.Status "running" "paused"}}ok{{end}}"#, &d),
        "ok"
    );
    assert_eq!(
        run(
            r#"{{if and .State.Running (eq .Tag "3.19")}}both{{end}}"#,
            &d
        ),
        "both"
    );
}

#[test]
fn with_blocks() {
    let d = image();
    assert_eq!(run("{{with .State}}{{.Status}}{{end}}", &d), "running");
    assert_eq!(run("{{with .Nope}}x{{else}}none{{end}}", &d), "none");
    assert_eq!(
        run("{{with $s := .State.Status}}{{$s}}/{{.}}{{end}}", &d),
        "running/running"
    );
    assert_eq!(
        run("{{with .Blank}}a{{else with .Tag}}{{.}}{{end}}", &d),
        "3.19"
    );
}

#[test]
fn ranges() {
    let d = image();
    assert_eq!(
        run("{{range $i, $e := .Names}}{{$i}}={{$e}} {{end}}", &d),
        "0=web 1=frontend "
    );
    assert_eq!(
        run("{{range $e := .Names}}{{$e}};{{end}}", &d),
        "web;frontend;"
    );
    assert_eq!(
        run(
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            &d
        ),
        "a.b=c;maintainer=me <me@example.com>;"
    );
    // maps iterate in sorted key order regardless of the value's order
    let m: Value = serde_json::from_str(r#"{"z": 1, "a": 2, "m": 3}"#).unwrap();
    assert_eq!(run("{{range .}}{{.}}{{end}}", &m), "231");
    assert_eq!(run("{{range .Empty}}x{{else}}empty{{end}}", &d), "empty");
    assert_eq!(run("{{range .Nope}}x{{else}}none{{end}}", &d), "none");
    assert_eq!(run("{{range .Config.Cmd}}x{{end}}", &d), "");
    assert_eq!(run("{{range 3}}{{.}}{{end}}", &d), "012");
    assert_eq!(
        run(
            "{{range .Names}}{{if eq . \"web\"}}{{continue}}{{end}}{{.}}{{end}}",
            &d
        ),
        "frontend"
    );
    assert_eq!(
        run(
            "{{range $i, $_ := .Names}}{{if $i}}{{break}}{{end}}{{.}}{{end}}",
            &d
        ),
        "web"
    );
    assert_eq!(
        run("{{range .Names}}{{$.Repository}}{{end}}", &d),
        "alpinealpine"
    );
    assert!(
        exec_err("{{range .Repository}}{{end}}", &d).contains("range can't iterate over alpine")
    );
    assert!(parse_err("{{break}}").contains("outside {{range}}"));
}

#[test]
fn nested_docker_inspect_style() {
    let d = json!({
        "NetworkSettings": {
            "Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "app": {"IPAddress": "10.0.0.5"}},
            "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
        }
    });
    assert_eq!(
        run(
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            &d
        ),
        "10.0.0.5 172.17.0.2 "
    );
    assert_eq!(
        run("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}", &d),
        "80/tcp -> 8080"
    );
    assert_eq!(
        run(
            r#"{{(index .NetworkSettings.Networks "bridge").IPAddress}}"#,
            &d
        ),
        "172.17.0.2"
    );
}

#[test]
fn trim_markers() {
    let d = json!({"A": "x"});
    assert_eq!(run("a  {{- .A -}}  b", &d), "axb");
    assert_eq!(run("a\n\t{{- .A}}\n b", &d), "ax\n b");
    assert_eq!(run("a {{.A -}}\n\n b", &d), "a xb");
    assert_eq!(run("{{- 3}}", &d), "3");
    assert_eq!(run("{{-3}}", &d), "-3");
    assert_eq!(
        run("{{range .L -}}\n  {{.}}\n{{- end}}", &json!({"L": [1, 2]})),
        "12"
    );
}

#[test]
fn comments() {
    let d = json!({"A": "x"});
    assert_eq!(run("a{{/* hidden */}}b", &d), "ab");
    assert_eq!(run("a {{- /* hidden */ -}} b", &d), "ab");
    assert_eq!(run("{{/* multi\nline */}}{{.A}}", &d), "x");
    assert!(parse_err("{{/* never closed").contains("unclosed comment"));
    assert!(parse_err("{{/* x */ .A}}").contains("comment ends before closing delimiter"));
}

#[test]
fn define_template_block() {
    let d = json!({"A": "x", "B": {"C": "y"}});
    assert_eq!(
        run(
            r#"{{define "t"}}[{{.}}]{{end}}{{template "t" .A}}{{template "t" .B.C}}"#,
            &d
        ),
        "[x][y]"
    );
    assert_eq!(run(r#"{{block "b" .A}}<{{.}}>{{end}}"#, &d), "<x>");
    assert!(exec_err(r#"{{template "nope"}}"#, &d).contains("no such template \"nope\""));
    assert!(exec_err(
        r#"{{define "r"}}{{template "r"}}{{end}}{{template "r"}}"#,
        &d
    )
    .contains("maximum template depth"));
}

// ---------------------------------------------------------------- functions

#[test]
fn logic_functions() {
    let d = json!({"T": true, "F": false, "S": "s", "E": ""});
    assert_eq!(run("{{and .T .S}}", &d), "s");
    assert_eq!(run("{{and .T .E .S}}", &d), "");
    assert_eq!(run("{{or .E .F}}", &d), "false");
    assert_eq!(run("{{or .E .S .T}}", &d), "s");
    assert_eq!(run("{{not .E}} {{not .S}}", &d), "true false");
    // short-circuit: the failing index is never evaluated
    assert_eq!(run("{{or .T (index .S 99)}}", &d), "true");
    assert_eq!(run("{{and .F (index .S 99)}}", &d), "false");
    assert_eq!(run("{{.T | and .S}}", &d), "true");
}

#[test]
fn comparisons() {
    let d = json!({"N": 3, "F": 2.5, "S": "b", "L": [1], "Null": null});
    assert_eq!(
        run(
            "{{eq .N 3}} {{ne .N 3}} {{lt .N 4}} {{le .N 3}} {{gt .N 3}} {{ge .N 3}}",
            &d
        ),
        "true false true true false true"
    );
    assert_eq!(
        run(r#"{{lt .S "c"}} {{gt .S "a"}} {{eq .S "a" "b"}}"#, &d),
        "true true true"
    );
    assert_eq!(run("{{lt .F .N}} {{eq 3.0 .N}}", &d), "true true");
    assert_eq!(
        run("{{eq .Null nil}} {{eq .Missing nil}} {{eq .S nil}}", &d),
        "true true false"
    );
    assert!(exec_err(r#"{{eq .N "3"}}"#, &d).contains("incompatible types for comparison"));
    assert!(exec_err("{{eq .L .L}}", &d).contains("non-comparable"));
    assert!(exec_err("{{lt true false}}", &d).contains("invalid type for comparison"));
    assert!(exec_err("{{eq .N}}", &d).contains("missing argument for comparison"));
}

#[test]
fn len_index_slice() {
    let d = json!({"S": "héllo", "L": ["a", "b", "c"], "M": {"x": 1, "y": 2}, "Nested": [[1, 2], [3, 4]], "Labels": {"k": "v"}, "Objs": {"k": {"a": 1}}});
    assert_eq!(run("{{len .S}} {{len .L}} {{len .M}}", &d), "6 3 2");
    assert_eq!(
        run(
            "{{index .L 1}} {{index .Nested 1 0}} {{index .M \"y\"}} {{index .S 0}}",
            &d
        ),
        "b 3 2 104"
    );
    assert_eq!(run("[{{index .Labels \"missing\"}}]", &d), "[]");
    assert_eq!(run("{{index .Objs \"missing\"}}", &d), "<no value>");
    assert_eq!(run("{{index .L}}", &d), "[a b c]");
    assert_eq!(
        run(
            "{{slice .L 1}} {{slice .L 0 2}} {{slice .S 1 3}} {{slice .L}}",
            &d
        ),
        "[b c] [a b] é [a b c]"
    );
    assert!(exec_err("{{index .L 5}}", &d).contains("index out of range: 5"));
    assert!(exec_err("{{len 3}}", &d).contains("len of type int"));
    assert!(exec_err("{{index .M 1}}", &d).contains("should be string"));
    assert!(exec_err("{{index .Nope 1}}", &d).contains("index of untyped nil"));
    assert!(exec_err("{{slice .L 2 1}}", &d).contains("invalid slice index"));
}

#[test]
fn print_functions() {
    let d = json!({"A": "x", "N": 5, "F": 0.5, "L": [1, 2]});
    assert_eq!(run("{{print .A .N}}", &d), "x5");
    assert_eq!(run("{{print .N .N}}", &d), "5 5");
    assert_eq!(run("{{println .A .N}}", &d), "x 5\n");
    assert_eq!(run(r#"{{printf "%s=%d" .A .N}}"#, &d), "x=5");
    assert_eq!(run(r#"{{printf "%-5s|%5s|" .A .A}}"#, &d), "x    |    x|");
    assert_eq!(
        run(r#"{{printf "%v %v %t" .L .F true}}"#, &d),
        "[1 2] 0.5 true"
    );
    assert_eq!(run(r#"{{printf "%q" .A}}"#, &d), "\"x\"");
    assert_eq!(
        run(r#"{{printf "%x %.2f %03d" 255 .F .N}}"#, &d),
        "ff 0.50 005"
    );
    assert_eq!(run(r#"{{printf "%d" .A}}"#, &d), "%!d(string=x)");
    assert_eq!(
        run(r#"{{printf "%-20s|" "name"}}"#, &d),
        "name                |"
    );
    assert_eq!(
        run(r#"{{html "<a>"}} {{urlquery "a b"}} {{js "it's"}}"#, &d),
        "&lt;a&gt; a+b it\\'s"
    );
}

#[test]
fn docker_functions() {
    let d = json!({"S": "hello big world", "L": ["a", "b"], "E": "", "N": 3});
    assert_eq!(run(r#"{{split "a:b:c" ":"}}"#, &d), "[a b c]");
    assert_eq!(run(r#"{{index (split "a:b:c" ":") 2}}"#, &d), "c");
    assert_eq!(run(r#"{{join .L ", "}}"#, &d), "a, b");
    assert_eq!(run(r#"{{join .Missing ","}}"#, &d), "");
    assert_eq!(run("{{title .S}}", &d), "Hello Big World");
    assert_eq!(
        run("{{upper .S}}|{{lower \"ABC\"}}", &d),
        "HELLO BIG WORLD|abc"
    );
    assert_eq!(
        run("[{{pad .L.x 1 1}}]", &json!({"L": {"x": "v"}})),
        "[ v ]"
    );
    assert_eq!(run("[{{pad .E 2 2}}]", &d), "[]");
    assert_eq!(
        run("{{truncate .S 5}}|{{truncate .S 50}}", &d),
        "hello|hello big world"
    );
    assert!(exec_err("{{upper .N}}", &d).contains("wrong type for value; expected string; got int"));
    assert!(exec_err(r#"{{join "x" ","}}"#, &d).contains("expected []string"));
    assert!(exec_err(r#"{{truncate .S "x"}}"#, &d).contains("expected int"));
}

// ---------------------------------------------------------------- errors

#[test]
fn parse_errors() {
    assert_eq!(
        parse_err("{{foo .}}"),
        "template parsing error: template: :1: function \"foo\" not defined"
    );
    assert!(parse_err("{{.ID").contains("unclosed action"));
    assert!(parse_err("a\n{{.ID").contains(":2: unclosed action"));
    assert!(parse_err("{{if .A}}x").contains("unexpected EOF"));
    assert!(parse_err("{{end}}").contains("unexpected {{end}}"));
    assert!(parse_err("{{else}}").contains("unexpected {{else}}"));
    assert!(parse_err("{{}}").contains("missing value for command"));
    assert!(parse_err("{{(.A}}").contains("unclosed left paren"));
    assert!(parse_err("{{.A)}}").contains("unexpected right paren"));
    assert!(parse_err("{{\"abc}}").contains("unterminated quoted string"));
    assert!(parse_err("{{.A | 3}}").contains("non executable command"));
    assert!(parse_err("{{.A \"x\"\"y\"}}").contains("in operand"));
    assert!(parse_err("{{if $a, $b := .}}{{end}}").contains("too many declarations in if"));
    assert!(parse_err("{{3x}}").contains("bad number syntax"));
    assert!(parse_err("{{range}}{{end}}").contains("missing value for range"));
    assert!(parse_err("{{.A #}}").contains("unrecognized character"));
}

#[test]
fn exec_errors() {
    let d = image();
    let e = exec_err("{{len}}", &d);
    assert!(
        e.contains("wrong number of args for len: want 1 got 0"),
        "{e}"
    );
    assert!(
        e.starts_with("template: :1:2: executing \"\" at <len>: "),
        "{e}"
    );
    assert!(exec_err("{{not 1 2}}", &d).contains("wrong number of args for not: want 1 got 2"));
    assert!(exec_err("{{.Repository 1}}", &d).contains("is not a method but has arguments"));
    assert!(exec_err("{{.Repository.Foo}}", &d).contains("can't evaluate field Foo in type string"));
    assert!(exec_err("{{.State.Health.Status}}", &d).contains("nil pointer evaluating"));
    assert!(exec_err(r#"{{printf 3}}"#, &d).contains("expected string"));
    assert!(exec_err("{{pad \"x\" 1}}", &d).contains("want 3 got 2"));
}

// ---------------------------------------------------------------- robustness

/// Small deterministic PRNG (xorshift) so the test needs no dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn garbled_templates_never_panic() {
    let pieces = [
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        ".",
        ".A",
        ".B.C",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"s\"",
        "`r`",
        "'c'",
        "1",
        "-2",
        "3.5",
        "0x",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "break",
        "continue",
        "nil",
        "true",
        "len",
        "index",
        "slice",
        "printf",
        "\"%d %s %v %-5q %\"",
        "json",
        "join",
        "split",
        "pad",
        "truncate",
        "and",
        "or",
        "not",
        "eq",
        "lt",
        "/*",
        "*/",
        ",",
        "\\t",
        "\\n",
        "é",
        "\"",
        "'",
        "`",
        "\\",
        "text",
        "\n",
        "}",
        "{",
        "$y",
        "html",
        "print",
        "\"t\"",
        "upper",
    ];
    let data = json!({"A": "a", "B": {"C": [1, "two", null, {"D": 4.5}]}, "L": [1, 2, 3]});
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let n = 1 + (rng.next() % 14) as usize;
        let mut t = String::new();
        for _ in 0..n {
            t.push_str(rng.pick(&pieces));
        }
        if let Ok(tpl) = Template::parse(&t) {
            let _ = tpl.execute(&data);
            let _ = render_header(&t, &|f: &str| f.to_uppercase());
        }
    }
    // random bytes too
    for _ in 0..5_000 {
        let n = (rng.next() % 40) as usize;
        let alphabet = b"{}.$|()\"`' -=:,ab1\\/*";
        let bytes: Vec<u8> = (0..n)
            .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
            .collect();
        let t = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(tpl) = Template::parse(&t) {
            let _ = tpl.execute(&data);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(Template::parse(&deep).is_err());
    let ifs = format!("{}x{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000));
    assert!(Template::parse(&ifs).is_err());
    // recursion through nested blocks stops with an error, in a 2 MiB test thread
    let nested = format!(
        r#"{{{{define "r"}}}}{}{{{{template "r"}}}}{}{{{{end}}}}{{{{template "r"}}}}"#,
        "{{with 1}}{{range 1}}{{if 1}}".repeat(30),
        "{{end}}{{end}}{{end}}".repeat(30)
    );
    let e = exec_err(&nested, &json!(null));
    assert!(e.contains("exceeded maximum template depth"), "{e}");
    let ok = format!("{}x{}", "{{if 1}}".repeat(50), "{{end}}".repeat(50));
    assert_eq!(run(&ok, &json!(null)), "x");
}
