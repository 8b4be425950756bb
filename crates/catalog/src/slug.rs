//! CLI slugs for groups, commands and flag names.
//!
//! Rule: split the input into words, lower-case them and join them with `-`.
//!
//! | input | boundary | example |
//! |---|---|---|
//! | any non-ASCII-alphanumeric char (`_ - . : / { }` space ...) | separator, runs collapse | `get:/tickets/{id}` -> `get-tickets-id` |
//! | lower-case or digit followed by upper-case | new word | `listTickets` -> `list-tickets` |
//! | an upper-case run followed by upper+lower | the last capital starts a word | `getHTTPStatus` -> `get-http-status` |
//!
//! Acronyms stay whole (the anchor produced `get-h-t-t-p-status`), header names keep single
//! dashes (`X-Trace-Id` -> `x-trace-id`, not `x--trace--id`) and separators never vanish
//! (`get:/tickets/{id}` is not squashed into `getticketsid`). The result may be empty (an input
//! of only non-ASCII or punctuation); callers fall back to their next naming rule.

/// Slugify `input` per the module rules.
pub fn slugify(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len() + 4);
    let mut pending_sep = false;
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            pending_sep = true;
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_is_lower)
            {
                pending_sep = true;
            }
        }
        if pending_sep && !out.is_empty() {
            out.push('-');
        }
        pending_sep = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn camel_case_becomes_kebab_case() {
        assert_eq!(slugify("listTickets"), "list-tickets");
        assert_eq!(slugify("ListTickets"), "list-tickets");
    }

    #[test]
    fn acronyms_are_not_split_letter_by_letter() {
        assert_eq!(slugify("getHTTPStatus"), "get-http-status");
        assert_eq!(slugify("getHTTP"), "get-http");
        assert_eq!(slugify("URLList"), "url-list");
    }

    #[test]
    fn header_names_keep_single_dashes() {
        assert_eq!(slugify("X-Trace-Id"), "x-trace-id");
        assert_eq!(slugify("x_trace__id"), "x-trace-id");
    }

    #[test]
    fn fallback_operation_id_becomes_a_readable_command() {
        assert_eq!(slugify("get:/tickets/{id}"), "get-tickets-id");
        assert_eq!(slugify("post:/"), "post");
    }

    #[test]
    fn digits_stay_with_their_word() {
        assert_eq!(slugify("getV2Users"), "get-v2-users");
        assert_eq!(slugify("oauth2token"), "oauth2token");
    }

    #[test]
    fn punctuation_only_yields_empty_and_edges_are_trimmed() {
        assert_eq!(slugify("  --{}--  "), "");
        assert_eq!(slugify("--repos.list--"), "repos-list");
        assert_eq!(slugify("Über"), "ber");
    }
}
