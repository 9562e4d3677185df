use super::*;
use crate::shell::NoEnv;

fn err(src: &str) -> Error {
    parse_dockerfile(src).expect_err("must fail")
}

fn only(src: &str) -> InstructionKind {
    let df = parse_dockerfile(src).unwrap();
    df.stages[0].instructions[0].kind.clone()
}

#[test]
fn copy_typo_suggests_the_fix() {
    let e = err("FROM python:3.12\nWORKDIR /app\nCOPY requirements.txt.\n");
    assert_eq!(
        e.summary(),
        "line 3: COPY needs a source and a destination — did you mean `COPY requirements.txt .`?"
    );
    assert_eq!((e.line, e.column), (3, 6));
    let text = e.to_string();
    assert!(text.contains(" 3 | COPY requirements.txt."), "{text}");
    assert!(text.contains("|      ^ column 6"), "{text}");
    let e = err("FROM a\nADD --chown=1 src/\n");
    assert_eq!(
        e.summary(),
        "line 2: ADD needs a source and a destination — write `ADD <src>... <dest>`"
    );
    let e = err("FROM a\nCOPY ./\n");
    assert!(e.summary().ends_with("write `COPY <src>... <dest>`"), "{e}");
}

#[test]
fn unknown_instruction_suggests_nearest() {
    let e = err("FROM a\n  RUNN echo hi\n");
    assert_eq!(
        e.summary(),
        "line 2: unknown instruction: RUNN (did you mean RUN?)"
    );
    assert_eq!(e.column, 3);
    assert_eq!(
        err("FROM a\nCOPPY a b\n").summary(),
        "line 2: unknown instruction: COPPY (did you mean COPY?)"
    );
    assert_eq!(
        err("FROM a\nFROBNICATE x\n").summary(),
        "line 2: unknown instruction: FROBNICATE"
    );
}

#[test]
fn unterminated_heredoc_names_its_line() {
    let e = err("FROM a\n\nRUN <<EOF\necho hi\n");
    assert_eq!(
        e.summary(),
        "line 3: unterminated heredoc <<EOF started on line 3 — end it with a line containing only `EOF`"
    );
    assert_eq!(e.end_line, 4);
}

#[test]
fn empty_files_have_no_instructions() {
    for src in [
        "",
        "# only\n# comments\n\n",
        "# syntax=docker/dockerfile:1\n",
    ] {
        let e = err(src);
        assert!(matches!(e.kind, ErrorKind::NoInstructions), "{src:?}");
        assert!(e.to_string().contains("file with no instructions"));
    }
}

#[test]
fn env_without_value() {
    let e = err("FROM a\nENV PATH\n");
    assert_eq!(
        e.summary(),
        "line 2: ENV needs a value — write `ENV PATH=<value>`"
    );
    let e = err("FROM a\nLABEL a=b c\n");
    assert_eq!(
        e.summary(),
        "line 2: LABEL: can't find = in \"c\" — every word must be of the form name=value"
    );
}

#[test]
fn nested_json_is_an_error() {
    let e = err("FROM a\nCMD [ \"echo\", [ \"nested\" ] ]\n");
    assert_eq!(
        e.summary(),
        "line 2: CMD exec form must be a JSON array of strings — quote every element, e.g. [\"echo\", \"hello\"]"
    );
}

#[test]
fn from_rules() {
    assert!(err("FROM a b\n")
        .summary()
        .contains("FROM requires either one or three arguments"));
    assert!(err("FROM a AS 1x\n")
        .summary()
        .contains("invalid name for build stage"));
    let e = err("FROM a AS x\nFROM b AS X\n");
    assert_eq!(
        e.summary(),
        "line 2: duplicate stage name \"x\" (first used on line 1) — give each stage a unique name"
    );
    assert_eq!(
        err("RUN x\nFROM a\n").summary(),
        "line 1: RUN before FROM — a build stage must start with FROM (only ARG may come before it)"
    );
    assert!(err("FROM --plaform=x a\n")
        .summary()
        .contains("(did you mean --platform?)"));
}

#[test]
fn other_errors_say_the_fix() {
    assert!(err("FROM a\nSHELL /bin/bash -c\n")
        .summary()
        .contains("SHELL [\"/bin/sh\", \"-c\"]"));
    assert!(err("FROM a\nHEALTHCHECK NONE x\n")
        .summary()
        .contains("NONE takes no arguments"));
    assert!(err("FROM a\nHEALTHCHECK CMD\n")
        .summary()
        .contains("Missing command after HEALTHCHECK CMD"));
    assert!(err("FROM a\nHEALTHCHECK --interval=5 CMD x\n")
        .summary()
        .contains("--interval"));
    assert!(err("FROM a\nHEALTHCHECK --interval=1us CMD x\n")
        .summary()
        .contains("less than 1ms"));
    assert!(err("FROM a\nHEALTHCHECK PING x\n")
        .summary()
        .contains("use CMD or NONE"));
    assert!(err("FROM a\nONBUILD ONBUILD RUN x\n")
        .summary()
        .contains("isn't allowed as an ONBUILD trigger"));
    assert!(err("FROM a\nONBUILD RUNN x\n")
        .summary()
        .contains("did you mean RUN?"));
    assert!(err("FROM a\nRUN --network=bridge x\n")
        .summary()
        .contains("--network=default, none or host"));
    assert!(err("FROM a\nRUN --mount=type=cache x\n")
        .summary()
        .contains("add target=<path>"));
    assert!(err("FROM a\nCOPY --link=maybe a b\n")
        .summary()
        .contains("--link=true"));
    assert!(err("FROM a\nCOPY --keep-git-dir a b\n")
        .summary()
        .contains("unknown flag --keep-git-dir for COPY"));
    assert!(err("FROM a\nCMD --doit [\"a\"]\n")
        .summary()
        .contains("unknown flag --doit for CMD"));
    assert!(err("FROM a\nWORKDIR\n")
        .summary()
        .contains("WORKDIR needs path"));
    assert!(err("FROM a\nEXPOSE\n")
        .summary()
        .contains("EXPOSE needs at least one port"));
    assert!(err("FROM a\nRUN\n")
        .summary()
        .contains("RUN needs a command"));
    assert!(err("# escape=x\nFROM a\n")
        .summary()
        .starts_with("line 1: invalid escape token 'x'"));
}

#[test]
fn stages_and_meta_args() {
    let src = "# syntax=docker/dockerfile:1\nARG BASE=alpine\nARG V\nFROM --platform=$BUILDPLATFORM ${BASE} AS build\nRUN make\nfrom scratch\ncopy --from=build /out /\n";
    let df = parse_dockerfile(src).unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.meta_args.len(), 2);
    assert_eq!(
        df.meta_args[0].kind,
        InstructionKind::Arg(vec![ArgDecl {
            name: "BASE".into(),
            default: Some("alpine".into())
        }])
    );
    assert_eq!(df.stages.len(), 2);
    let b = &df.stages[0];
    assert_eq!(
        (
            b.name.as_deref(),
            b.base.as_str(),
            b.platform.as_deref(),
            b.start_line
        ),
        (Some("build"), "${BASE}", Some("$BUILDPLATFORM"), 4)
    );
    assert_eq!(df.stages[1].name, None);
    assert_eq!(df.stage("BUILD").unwrap().index, 0);
    assert_eq!(df.stage("1").unwrap().base, "scratch");
    match &df.stages[1].instructions[0].kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.sources, vec!["/out"]);
            assert_eq!(c.dest, "/");
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn run_with_mounts_and_heredoc() {
    let src = "FROM a\nRUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=tok \\\n    --network=none --security=insecure <<EOF\npip install x\nEOF\n";
    let df = parse_dockerfile(src).unwrap();
    let inst = &df.stages[0].instructions[0];
    assert_eq!((inst.start_line, inst.end_line), (2, 5));
    let InstructionKind::Run(run) = &inst.kind else {
        panic!()
    };
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(run.mounts[0].typ, MountType::Cache);
    assert_eq!(run.mounts[1].typ, MountType::Secret);
    assert_eq!(run.network.as_deref(), Some("none"));
    assert_eq!(run.security.as_deref(), Some("insecure"));
    assert_eq!(run.cmd, ShellOrExec::Shell("<<EOF".into()));
    assert_eq!(run.heredocs[0].content, "pip install x\n");
    assert_eq!(
        only("FROM a\nRUN [\"echo\", \"hi\"]\n"),
        InstructionKind::Run(Run {
            mounts: vec![],
            network: None,
            security: None,
            devices: vec![],
            cmd: ShellOrExec::Exec(vec!["echo".into(), "hi".into()]),
            heredocs: vec![],
        })
    );
}

#[test]
fn copy_and_add_options() {
    let k = only("FROM a\nCOPY --chown=1:2 --chmod=644 --link --parents --exclude=*.tmp --exclude=x a b /d/\n");
    let InstructionKind::Copy(c) = k else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("644"));
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, vec!["*.tmp", "x"]);
    assert_eq!(c.sources, vec!["a", "b"]);
    let k = only("FROM a\nADD --checksum=sha256:abc --keep-git-dir=true https://x/y.git /src\n");
    let InstructionKind::Add(a) = k else { panic!() };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert!(a.keep_git_dir);
    let k = only("FROM a\nCOPY [\"a b\", \"/c d\"]\n");
    let InstructionKind::Copy(c) = k else {
        panic!()
    };
    assert_eq!(
        (c.sources, c.dest, c.json),
        (vec!["a b".to_string()], "/c d".to_string(), true)
    );
}

#[test]
fn copy_heredoc_sources() {
    let src = "FROM a\nCOPY <<-one <<'two' /dst/\n\thello $X\n\tone\nraw $X\ntwo\n";
    let df = parse_dockerfile(src).unwrap();
    let inst = &df.stages[0].instructions[0];
    let InstructionKind::Copy(c) = &inst.kind else {
        panic!()
    };
    assert!(c.sources.is_empty());
    assert_eq!(
        c.source_contents,
        vec![
            SourceContent {
                path: "one".into(),
                data: "hello $X\n".into(),
                expand: true
            },
            SourceContent {
                path: "two".into(),
                data: "raw $X\n".into(),
                expand: false
            },
        ]
    );
    let env = vec![("X".to_string(), "\"v\"".to_string())];
    let e = inst.expand(&Lexer::new('\\'), &env).unwrap();
    let InstructionKind::Copy(c) = &e.kind else {
        panic!()
    };
    assert_eq!(c.source_contents[0].data, "hello \"v\"\n");
    assert_eq!(c.source_contents[1].data, "raw $X\n");
    assert!(err("FROM a\nCOPY x <<EOF\nEOF\n")
        .summary()
        .contains("heredoc as the destination"));
}

#[test]
fn simple_instructions() {
    assert_eq!(
        only("FROM a\nENV A=1 B=\"x y\"\n"),
        InstructionKind::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"x y\"".into())
        ])
    );
    assert_eq!(
        only("FROM a\nENV A 1 2\n"),
        InstructionKind::Env(vec![("A".into(), "1 2".into())])
    );
    assert_eq!(
        only("FROM a\nLABEL version=1.0\n"),
        InstructionKind::Label(vec![("version".into(), "1.0".into())])
    );
    assert_eq!(
        only("FROM a\nEXPOSE 80 53/udp\n"),
        InstructionKind::Expose(vec!["80".into(), "53/udp".into()])
    );
    assert_eq!(
        only("FROM a\nUSER app:app\n"),
        InstructionKind::User("app:app".into())
    );
    assert_eq!(
        only("FROM a\nWORKDIR /srv/app\n"),
        InstructionKind::Workdir("/srv/app".into())
    );
    assert_eq!(
        only("FROM a\nVOLUME /a /b\n"),
        InstructionKind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        only("FROM a\nENTRYPOINT [\"/init\"]\n"),
        InstructionKind::Entrypoint(ShellOrExec::Exec(vec!["/init".into()]))
    );
    assert_eq!(
        only("FROM a\nCMD echo hi\n"),
        InstructionKind::Cmd(ShellOrExec::Shell("echo hi".into()))
    );
    assert_eq!(
        only("FROM a\nCMD []\n"),
        InstructionKind::Cmd(ShellOrExec::Exec(vec![]))
    );
    assert_eq!(
        only("FROM a\nSTOPSIGNAL SIGTERM\n"),
        InstructionKind::Stopsignal("SIGTERM".into())
    );
    assert_eq!(
        only("FROM a\nSHELL [\"bash\", \"-c\"]\n"),
        InstructionKind::Shell(vec!["bash".into(), "-c".into()])
    );
    assert_eq!(
        only("FROM a\nONBUILD  RUN echo \\\n  hi\n"),
        InstructionKind::Onbuild("RUN echo   hi".into())
    );
    assert_eq!(
        only("FROM a\nMAINTAINER me\n"),
        InstructionKind::Maintainer("me".into())
    );
    assert_eq!(
        only("FROM a\nHEALTHCHECK --interval=5s --timeout=3s --start-period=1m --retries=3 CMD curl -f x\n"),
        InstructionKind::Healthcheck(Healthcheck {
            test: HealthcheckTest::Cmd(ShellOrExec::Shell("curl -f x".into())),
            interval: Some(Duration::from_secs(5)),
            timeout: Some(Duration::from_secs(3)),
            start_period: Some(Duration::from_secs(60)),
            start_interval: None,
            retries: Some(3),
        })
    );
    assert_eq!(
        only("FROM a\nHEALTHCHECK NONE\n"),
        InstructionKind::Healthcheck(Healthcheck {
            test: HealthcheckTest::None,
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        })
    );
}

#[test]
fn backtick_escape_file() {
    let df = parse_dockerfile("# escape=`\nFROM mcr/windows\nRUN dir `\n  C:\\\n").unwrap();
    assert_eq!(df.directives.escape, '`');
    assert_eq!(
        df.stages[0].instructions[0].kind,
        InstructionKind::Run(Run {
            mounts: vec![],
            network: None,
            security: None,
            devices: vec![],
            cmd: ShellOrExec::Shell("dir   C:\\".into()),
            heredocs: vec![],
        })
    );
}

#[test]
fn expansion_per_instruction() {
    let lex = Lexer::new('\\');
    let env = vec![
        ("D".to_string(), "/data".to_string()),
        ("P".to_string(), "80 443".to_string()),
    ];
    let df = parse_dockerfile(
        "FROM a\nCOPY --chown=$U ${D}/x \"$D/y\" $D/\nEXPOSE $P\nRUN --mount=type=cache,target=$D echo $D\nCMD echo $D\n",
    )
    .unwrap();
    let ex: Vec<InstructionKind> = df.stages[0]
        .instructions
        .iter()
        .map(|i| i.expand(&lex, &env).unwrap().kind)
        .collect();
    let InstructionKind::Copy(c) = &ex[0] else {
        panic!()
    };
    assert_eq!(c.sources, vec!["/data/x", "/data/y"]);
    assert_eq!(c.dest, "/data/");
    assert_eq!(c.chown.as_deref(), Some(""));
    assert_eq!(
        ex[1],
        InstructionKind::Expose(vec!["80".into(), "443".into()])
    );
    let InstructionKind::Run(r) = &ex[2] else {
        panic!()
    };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/data"));
    assert_eq!(r.cmd, ShellOrExec::Shell("echo $D".into()));
    assert_eq!(
        ex[3],
        InstructionKind::Cmd(ShellOrExec::Shell("echo $D".into()))
    );

    let df = parse_dockerfile("FROM a\nWORKDIR ${X:?must set X}\n").unwrap();
    let e = df.stages[0].instructions[0]
        .expand(&lex, &NoEnv)
        .unwrap_err();
    assert_eq!(e.summary(), "line 2: X: must set X");
}

#[test]
fn to_argv() {
    let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
    assert_eq!(
        ShellOrExec::Shell("echo hi".into()).to_argv(&sh),
        vec!["/bin/sh", "-c", "echo hi"]
    );
    assert_eq!(
        ShellOrExec::Exec(vec!["ls".into()]).to_argv(&sh),
        vec!["ls"]
    );
}
