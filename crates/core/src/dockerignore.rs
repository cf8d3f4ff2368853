//! `.dockerignore` as Docker reads it (moby's `patternmatcher`): which files of a build context
//! the build sees. `build dev` uses it to name the uncommitted and untracked files that go into
//! the dev image, where Kamal builds a throwaway image to list the context instead.

/// One pattern of a `.dockerignore` file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// The cleaned pattern split on `/`.
    parts: Vec<String>,
    /// A `!pattern`: re-includes what earlier patterns excluded.
    include: bool,
}

/// The patterns of a `.dockerignore` file, in order (the last match wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the file's text: one pattern a line, `#` comments, blank lines skipped, a leading
    /// `!` negates, a leading `/` and `./` are dropped, the path is cleaned.
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (include, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let parts = clean(pattern);
                (!parts.is_empty()).then_some(Pattern { parts, include })
            })
            .collect();
        Self { patterns }
    }

    /// Whether the build context leaves out `path` (relative to the context, `/`-separated):
    /// the last pattern matching the path or one of its parent directories decides.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let mut excluded = false;
        for pattern in &self.patterns {
            let matched = (1..=path.len()).any(|len| matches(&pattern.parts, &path[..len]));
            if matched {
                excluded = !pattern.include;
            }
        }
        excluded
    }
}

/// `filepath.Clean` on a relative path, split into its parts.
fn clean(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other.to_owned()),
        }
    }
    parts
}

/// Whether pattern parts match path parts: `**` spans any number of directories (none too),
/// other parts match one name with `*`, `?` and `[...]` as in Go's `filepath.Match`.
fn matches(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, tail)) => {
                let pattern: Vec<char> = first.chars().collect();
                let name: Vec<char> = name.chars().collect();
                glob(&pattern, &name) && matches(rest, tail)
            }
            None => false,
        },
    }
}

/// One name against one pattern part.
fn glob(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some(('?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some(('[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                return name.first() == Some(&'[') && glob(rest, &name[1..]);
            };
            let Some((&c, tail)) = name.split_first() else {
                return false;
            };
            let (negated, class) = match rest[..close].split_first() {
                Some(('^' | '!', class)) => (true, class),
                _ => (false, &rest[..close]),
            };
            in_class(class, c) != negated && glob(&rest[close + 1..], tail)
        }
        Some(('\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && glob(&rest[1..], &name[1..])
        }
        Some((&literal, rest)) => name.first() == Some(&literal) && glob(rest, &name[1..]),
    }
}

fn in_class(class: &[char], c: char) -> bool {
    let mut index = 0;
    while index < class.len() {
        if index + 2 < class.len() && class[index + 1] == '-' {
            if (class[index]..=class[index + 2]).contains(&c) {
                return true;
            }
            index += 3;
        } else {
            if class[index] == c {
                return true;
            }
            index += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_exclude_files_and_whole_directories() {
        let ignore = DockerIgnore::parse(
            "# comment\n\n.git\n/log/*\ntmp\n*.md\n!README.md\n**/*.swp\nnode_modules/\n",
        );
        assert!(ignore.excludes(".git/HEAD"));
        assert!(ignore.excludes("log/development.log"));
        assert!(!ignore.excludes("log"), "log/* leaves the directory itself");
        assert!(ignore.excludes("tmp/cache/x"));
        assert!(ignore.excludes("CHANGELOG.md"));
        assert!(!ignore.excludes("README.md"), "re-included by !README.md");
        assert!(
            !ignore.excludes("docs/guide.md"),
            "*.md is for the root only"
        );
        assert!(ignore.excludes("app/models/.user.rb.swp"));
        assert!(ignore.excludes("node_modules/left-pad/index.js"));
        assert!(!ignore.excludes("app/models/user.rb"));
        assert!(!ignore.excludes("Dockerfile"));
    }

    #[test]
    fn character_classes_question_marks_and_cleaning() {
        let ignore = DockerIgnore::parse("file?.txt\n[a-c]*.log\n[!x]y\n./build/../dist\n");
        assert!(ignore.excludes("file1.txt"));
        assert!(!ignore.excludes("file10.txt"));
        assert!(ignore.excludes("b-server.log"));
        assert!(!ignore.excludes("d-server.log"));
        assert!(ignore.excludes("ay"));
        assert!(!ignore.excludes("xy"));
        assert!(ignore.excludes("dist/app.js"));
        assert!(!ignore.excludes("build/app.js"));
        assert!(!DockerIgnore::parse("").excludes("anything"));
    }
}
