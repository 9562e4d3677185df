fn main() {
    for src in [
        "FROM python:3.12\nWORKDIR /app\nCOPY requirements.txt.\n",
        "FROM a\n\tRUNN make\n",
        "FROM a\nRUN <<EOF\necho\n",
        "",
        "FROM a\nENV PATH\n",
    ] {
        match berth_dockerfile::parse_dockerfile(src) {
            Ok(_) => println!("ok"),
            Err(e) => println!("{e}\n"),
        }
    }
}
