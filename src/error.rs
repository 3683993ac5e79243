//! Exit codes, and how a failed command is reported: one paragraph on stderr that names the
//! thing and the fix. Scripts can trust the codes:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success: everything asked for was done |
//! | 1 | problems found: the run finished, but some images are missing, failed or differ |
//! | 2 | error: bad usage or configuration, unreadable input, or the job could not run |

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Success,
    /// The run finished, but found or left problems (reported on stderr / in `--json`).
    Problems,
}

impl Exit {
    /// `Problems` when anything went wrong, else `Success`.
    pub fn from_problems(any: bool) -> Exit {
        if any { Exit::Problems } else { Exit::Success }
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Problems => 1,
        }
    }
}

/// The exit code of a command that failed with an error.
pub const ERROR_EXIT_CODE: u8 = 2;

/// Renders an error and its causes as one paragraph: `outer: inner: innermost`, skipping a
/// cause whose text the outer message already contains.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Kept here for callers not yet moved: the error chain belongs to no layer in particular.
pub use ferry_base::chain::flatten;

/// Failures grouped by cause, in order of first appearance: a registry that is down is one
/// cause for every image, said once.
pub fn group_by_cause<'a>(
    failures: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (name, cause) in failures {
        match at.get(cause) {
            Some(&i) => groups[i].1.push(name),
            None => {
                at.insert(cause, groups.len());
                groups.push((cause, vec![name]));
            }
        }
    }
    groups
}

/// [`group_by_cause`] as one line: `CAUSE (2 images: a, b); CAUSE (image c)`.
pub fn causes_line<'a>(failures: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    group_by_cause(failures)
        .iter()
        .map(|(cause, names)| match names.as_slice() {
            [one] => format!("{one}: {cause}"),
            many => format!("{cause} ({} images: {})", many.len(), many.join(", ")),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
