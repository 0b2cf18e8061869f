//! Command templates: a command line split like a shell would (no shell runs it), with
//! placeholders checked before anything starts. `{ip}`, `{name}`, `{index}`, `{group}`,
//! `{dir}` (the node's working directory), `{port}` are the node's own; `{ROLE.FIELD}` is
//! the same field of the first node of another role (`{tracker.ip}`); `{run_dir}` is the
//! run's result directory and `{experiment_dir}` the folder of the experiment file. `{{` and `}}` are literal braces.

/// A field of a node that a placeholder can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeField {
    Ip,
    Name,
    Index,
    Group,
    Dir,
    Port,
}

const NODE_FIELDS: &[(&str, NodeField)] = &[
    ("ip", NodeField::Ip),
    ("name", NodeField::Name),
    ("index", NodeField::Index),
    ("group", NodeField::Group),
    ("dir", NodeField::Dir),
    ("port", NodeField::Port),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A field of the node the command runs for.
    Own(NodeField),
    /// A field of the first node of role `usize`.
    Of(usize, NodeField),
    Dir(RunDir),
}

/// A directory of the run that a placeholder can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunDir {
    /// `{run_dir}`: the run's result directory.
    Run,
    /// `{experiment_dir}`: the folder of the experiment file.
    Experiment,
}

/// One argument: pieces concatenated.
pub type Arg = Vec<Piece>;

/// The values placeholders are filled with, for one node.
pub trait Values {
    fn field(&self, role: Option<usize>, field: NodeField) -> String;
    fn dir(&self, dir: RunDir) -> String;
}

/// Parses `command` given the role names; `has_port(role)` tells whether a role has a
/// port. `own` is the role the command runs for, or `None` for a command that runs once
/// on the controller (`prepare`), which has no node fields of its own. Errors are
/// `(message, fix)`.
pub fn parse(
    command: &str,
    roles: &[&str],
    own: Option<usize>,
    has_port: impl Fn(usize) -> bool,
) -> Result<Vec<Arg>, (String, String)> {
    let words = shell_words::split(command).map_err(|e| {
        (
            format!("cannot split the command: {e}"),
            "balance its quotes".to_string(),
        )
    })?;
    if words.is_empty() {
        return Err((
            "the command is empty".into(),
            "give the program to run and its arguments".into(),
        ));
    }
    words
        .iter()
        .map(|w| parse_word(w, roles, own, &has_port))
        .collect()
}

fn parse_word(
    word: &str,
    roles: &[&str],
    own: Option<usize>,
    has_port: &dyn Fn(usize) -> bool,
) -> Result<Arg, (String, String)> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = word;
    while let Some(i) = rest.find(['{', '}']) {
        text.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            text.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err((
                format!("unmatched `}}` in `{word}`"),
                "write `}}` for a literal brace".into(),
            ));
        }
        // The placeholder ends at the next brace, which must close it.
        let Some(end) = tail[1..]
            .find(['{', '}'])
            .map(|j| j + 1)
            .filter(|&j| tail[j..].starts_with('}'))
        else {
            return Err((
                format!("unclosed `{{` in `{word}`"),
                "end the placeholder with `}`, or write `{{` for a literal brace".into(),
            ));
        };
        let name = &tail[1..end];
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(placeholder(name, roles, own, has_port)?);
        rest = &tail[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn placeholder(
    name: &str,
    roles: &[&str],
    own: Option<usize>,
    has_port: &dyn Fn(usize) -> bool,
) -> Result<Piece, (String, String)> {
    let field_names = NODE_FIELDS
        .iter()
        .map(|(n, _)| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let unknown = || {
        (
            format!("unknown placeholder `{{{name}}}`"),
            format!(
                "use {field_names}, {{run_dir}}, {{experiment_dir}}, or {{ROLE.FIELD}} with ROLE one of: {}",
                roles.join(", ")
            ),
        )
    };
    match name {
        "run_dir" => return Ok(Piece::Dir(RunDir::Run)),
        "experiment_dir" => return Ok(Piece::Dir(RunDir::Experiment)),
        _ => {}
    }
    let (role, field) = match name.split_once('.') {
        Some((role, field)) => (
            Some(roles.iter().position(|r| *r == role).ok_or_else(unknown)?),
            field,
        ),
        None => (None, name),
    };
    let field = NODE_FIELDS
        .iter()
        .find(|(n, _)| *n == field)
        .map(|(_, f)| *f)
        .ok_or_else(unknown)?;
    let Some(target) = role.or(own) else {
        return Err((
            format!("`{{{name}}}` has no node here: this command runs once, on the controller"),
            "name another role's field instead, e.g. `{tracker.ip}`".into(),
        ));
    };
    if field == NodeField::Port && !has_port(target) {
        return Err((
            format!(
                "`{{{name}}}` names a port, but role `{}` has none",
                roles[target]
            ),
            format!("add `port:` to role `{}`", roles[target]),
        ));
    }
    Ok(match role {
        Some(r) => Piece::Of(r, field),
        None => Piece::Own(field),
    })
}

/// Fills a parsed command.
pub fn render(args: &[Arg], values: &dyn Values) -> Vec<String> {
    args.iter()
        .map(|arg| {
            arg.iter()
                .map(|piece| match piece {
                    Piece::Text(t) => t.clone(),
                    Piece::Own(f) => values.field(None, *f),
                    Piece::Of(r, f) => values.field(Some(*r), *f),
                    Piece::Dir(p) => values.dir(*p),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V;
    impl Values for V {
        fn field(&self, role: Option<usize>, field: NodeField) -> String {
            format!("{role:?}/{field:?}")
        }
        fn dir(&self, dir: RunDir) -> String {
            format!("/{dir:?}")
        }
    }

    #[test]
    fn placeholders_are_parsed_and_rendered() {
        let args = parse(
            "aria2c --listen={port} 'http://{tracker.ip}:{tracker.port}/a b' -d {dir} {{x}}",
            &["tracker", "peer"],
            Some(1),
            |_| true,
        )
        .unwrap();
        assert_eq!(
            render(&args, &V),
            [
                "aria2c",
                "--listen=None/Port",
                "http://Some(0)/Ip:Some(0)/Port/a b",
                "-d",
                "None/Dir",
                "{x}"
            ]
        );
        assert_eq!(
            render(
                &parse("ls {run_dir}/x", &["a"], None, |_| false).unwrap(),
                &V
            ),
            ["ls", "/Run/x"]
        );
    }

    #[test]
    fn bad_placeholders_are_refused() {
        let e = parse("x {ipp}", &["a"], Some(0), |_| true).unwrap_err();
        assert_eq!(e.0, "unknown placeholder `{ipp}`");
        let e = parse("x {seed.ip}", &["a"], Some(0), |_| true).unwrap_err();
        assert_eq!(e.0, "unknown placeholder `{seed.ip}`");
        assert!(e.1.ends_with("ROLE one of: a"));
        let e = parse("x {port}", &["a"], Some(0), |_| false).unwrap_err();
        assert_eq!(e.0, "`{port}` names a port, but role `a` has none");
        assert!(parse("x {ip}", &["a"], None, |_| true)
            .unwrap_err()
            .0
            .contains("runs once"));
        for word in ["{ip", "a{ip", "{a{ip}"] {
            let e = parse(&format!("x {word}"), &["a"], Some(0), |_| true).unwrap_err();
            assert_eq!(e.0, format!("unclosed `{{` in `{word}`"));
        }
        let e = parse("x ip}", &["a"], Some(0), |_| true).unwrap_err();
        assert_eq!(e.0, "unmatched `}` in `ip}`");
        assert_eq!(
            parse("x 'a", &["a"], Some(0), |_| true).unwrap_err().1,
            "balance its quotes"
        );
    }
}
