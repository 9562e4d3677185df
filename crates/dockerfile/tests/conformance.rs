//! BuildKit conformance corpora from `shared/conformance` (beside the
//! repository checkout). A missing corpus is a failure, never a skip.

use std::fs;
use std::path::{Path, PathBuf};

use berth_dockerfile::shell::Lexer;
use berth_dockerfile::{dump, parse};

const PARSER_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/dockerfile-parser"
);
const SHELL_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/dockerfile-shell"
);

fn corpus(dir: &str) -> PathBuf {
    let p = PathBuf::from(dir);
    assert!(
        p.is_dir(),
        "conformance corpus not found at {} — the repository must be checked out beside shared/",
        p.display()
    );
    p
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn read(p: &Path) -> String {
    let bytes = fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", p.display()))
}

#[test]
fn parser_positive_cases_dump_byte_for_byte() {
    let root = corpus(PARSER_DIR).join("testfiles");
    let all = cases(&root);
    assert_eq!(all.len(), 33, "expected the 33 positive cases");
    let mut failures = Vec::new();
    for case in &all {
        let src = read(&case.join("Dockerfile"));
        let expected = read(&case.join("result"));
        match parse(&src) {
            Ok(ast) => {
                let got = dump(&ast) + "\n";
                if got != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{got}",
                        case.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: parse failed: {e}", case.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parser_negative_cases_fail() {
    let root = corpus(PARSER_DIR).join("testfiles-negative");
    let all = cases(&root);
    assert_eq!(all.len(), 4, "expected the 4 negative cases");
    for case in &all {
        let src = read(&case.join("Dockerfile"));
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let err = match parse(&src) {
            Ok(ast) => panic!("{name}: parsed but must fail: {}", dump(&ast)),
            Err(e) => e.to_string(),
        };
        let want = match name.as_str() {
            "empty_dockerfile" | "only_comments" => "file with no instructions",
            "env_no_value" => "ENV needs a value",
            "shykes-nested-json" => "JSON array of strings",
            _ => "",
        };
        assert!(err.contains(want), "{name}: error {err:?} lacks {want:?}");
    }
}

#[test]
fn parser_line_ranges() {
    let src = read(&corpus(PARSER_DIR).join("testfile-line/Dockerfile"));
    let ast = parse(&src).unwrap();
    assert_eq!((ast.start_line, ast.end_line), (5, 31));
    let ranges: Vec<(usize, usize)> = ast
        .children
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(ranges, vec![(5, 5), (11, 12), (17, 31)]);
}

fn env_var_env() -> Vec<(String, String)> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn shell_env_var_test() {
    let text = read(&corpus(SHELL_DIR).join("envVarTest"));
    let lex = Lexer::new('\\');
    let env = env_var_env();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 3, "bad line {line:?}");
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        if platform == "W" {
            continue;
        }
        count += 1;
        let got = lex.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(g), e) => e != "error" && g == e,
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(count > 200, "only {count} vectors read");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn shell_words_test() {
    let text = read(&corpus(SHELL_DIR).join("wordsTest"));
    let lex = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let rest = rest.trim_start();
            let (k, v) = rest.split_once('=').expect("ENV line needs =");
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let (input, expected) = line.split_once('|').expect("line needs |");
        let input = input.trim();
        let expected = expected.trim_start();
        count += 1;
        let got = lex.process_words(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(words), e) => e != "error" && *words == e.split(',').collect::<Vec<_>>(),
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(count > 20, "only {count} vectors read");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
