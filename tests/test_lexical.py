"""core.lexical: the one SQL scanner (quotes, dollar quotes, comments, words, numbers,
parameters) and the four readers built on it: fragment_problem, redact_query,
placeholder_count, split_statements. Pure, except the last test, which asks the server to read
the same texts."""
from __future__ import annotations

import random

import psycopg
import pytest

from reconciler.core import lexical
from reconciler.core.lexical import (Kind, fragment_problem, matching_paren, param_numbers, split_top_level, tokens,
                                      wraps)
from reconciler.core.redact import redact_query
from reconciler.core.sqltext import placeholder_count
from reconciler.normalize.script import split_statements

K = Kind


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind.value, text[t.start:t.end]) for t in tokens(text) if t.kind is not K.CODE]


@pytest.mark.parametrize("text, expected", [
    ("a 'x''y' b", [("word", "a"), ("string", "'x''y'"), ("word", "b")]),
    # a backslash ends nothing in '' (standard_conforming_strings on) ...
    ("'a\\' c'", [("string", "'a\\'"), ("word", "c"), ("string", "'")]),
    # ... and escapes the next character in E''
    ("E'a\\' b'", [("string", "E'a\\' b'")]),
    ("e'\\\\' x", [("string", "e'\\\\'"), ("word", "x")]),
    # a prefix counts only where a token starts
    ("abe'x'", [("word", "abe"), ("string", "'x'")]),
    ("B'01' X'ff' N'n' U&'d\\0061t' u&\"i\"", [("string", "B'01'"), ("string", "X'ff'"), ("string", "N'n'"),
                                              ("string", "U&'d\\0061t'"), ("quoted_ident", 'u&"i"')]),
    ('"a""b" "c\'d"', [("quoted_ident", '"a""b"'), ("quoted_ident", '"c\'d"')]),
    ("$$a'b$$ $q$ $$ $Q$ $q$ $é$x;$é$ $tag_1$y$tag_1$",
     [("dollar", "$$a'b$$"), ("dollar", "$q$ $$ $Q$ $q$"), ("dollar", "$é$x;$é$"), ("dollar", "$tag_1$y$tag_1$")]),
    # a '$' inside a word starts nothing; $1 is a parameter; $1$ is not a tag
    ("x$1$ y$q$ $1 $12$", [("word", "x$1$"), ("word", "y$q$"), ("param", "$1"), ("param", "$12")]),
    ("$a$x$ab$y$a$", [("dollar", "$a$x$ab$y$a$")]),
    ("1 2.5 .5 1e-3 0x1F 1_000 1e'x'", [("number", "1"), ("number", "2.5"), ("number", ".5"), ("number", "1e-3"),
                                        ("number", "0x1F"), ("number", "1_000"), ("number", "1"),
                                        ("string", "e'x'")]),
    ("a -- c ' \r\nb", [("word", "a"), ("line_comment", "-- c ' "), ("word", "b")]),
    ("a /* x /* y */ ' */ b", [("word", "a"), ("block_comment", "/* x /* y */ ' */"), ("word", "b")]),
    ("a*/*c*/-b", [("word", "a"), ("block_comment", "/*c*/"), ("word", "b")]),
    ("\u00e9t\u00e9 \u00fcber_1", [("word", "\u00e9t\u00e9"), ("word", "\u00fcber_1")]),
])
def test_tokens(text, expected):
    assert kinds(text) == expected


@pytest.mark.parametrize("text, kind", [
    ("'abc", K.STRING), ("E'abc\\'", K.STRING), ("E'\\", K.STRING), ('"abc', K.QUOTED_IDENT),
    ("$q$abc$Q$", K.DOLLAR), ("/* a /* b */", K.BLOCK_COMMENT),
])
def test_unclosed_token_runs_to_the_end(text, kind):
    *_, last = tokens("x " + text)
    assert (last.kind, last.end, last.closed) == (kind, len(text) + 2, False)


@pytest.mark.parametrize("text", [
    "", "a", "SELECT E'\\'' || $x$;$x$ -- c\n/* /* */ */ \"q\"\"\" $1 1.5e3;",
    "'unclosed", "$$ 1 $", "--", "\\\\ é$é$", "U&", "u&x", "1e", "$", "-/.$",
])
def test_tokens_cover_the_text_once(text):
    toks = list(tokens(text))
    assert "".join(text[t.start:t.end] for t in toks) == text
    assert all(a.end == b.start for a, b in zip(toks, toks[1:]))
    assert all(t.start < t.end for t in toks)
    assert not any(a.kind is b.kind is K.CODE for a, b in zip(toks, toks[1:]))


def test_tokens_from_an_offset():
    text = "\\set x 'y\nSELECT 1"
    assert kinds(text)[-1] == ("string", "'y\nSELECT 1")
    assert kinds(text)[:2] == [("word", "set"), ("word", "x")]
    assert [(t.kind, t.start) for t in tokens(text, text.index("\n"))][1] == (K.WORD, text.index("SELECT"))


# --- fragment_problem --------------------------------------------------------------------------

@pytest.mark.parametrize("text, needle", [
    ("a = 1; b", "contains ';'"),
    ("a = $é$x$é$; b", "contains ';'"),
    ("a = 'x' -- c", "comment"),
    ("a /* x */", "comment"),
    ("a = 'x", "string constant that is not closed"),
    ("a = E'x\\'", "string constant that is not closed"),
    ('"a', "quoted identifier that is not closed"),
    ("a = $é$x", "dollar-quoted string that is not closed"),
    ("a = 'x' \\", "backslash outside a string constant"),
    ("a = 'x\x00'", "NUL"),
    ("a)", "')' that closes"),
    ("(a", "'(' or '[' that is not closed"),
    # '' ends at \' under standard_conforming_strings: the rest is code
    ("a = 'x\\' = a; DROP TABLE t; SELECT '\\'", "contains ';'"),
    # an E'' prefix must start a token: here the string is a plain one
    ("ae'x\\' = a; SELECT '\\'", "contains ';'"),
    # PostgreSQL 14 reads 1e'...' as 1 then E'...' (15 and later refuse it)
    ("1e'x\\'; y'; z", "contains ';'"),
    # a '$' that continues a word starts no dollar quote
    ("a$q$ = '; x' || $q$", "dollar-quoted string that is not closed"),
])
def test_fragment_problem(text, needle):
    assert needle in (fragment_problem(text) or "")


@pytest.mark.parametrize("text", [
    "lower(a)", "a = E'it\\'s; x'", "a = 'x\\'", "a = $é$ ; -- /* $é$", "a = $q$ $Q$ $q$", '"a;b" = 1',
    "x = ANY (ARRAY[1, 2])", "a$q$ = 1", "b = 'it''s'", "c = U&'d\\0061t'",
])
def test_fragment_without_problem(text):
    assert fragment_problem(text) is None


# --- the readers on top of it ------------------------------------------------------------------

@pytest.mark.parametrize("sql, n", [
    ("SELECT $2 FROM t WHERE a = $é$ $9 $é$", 2),       # a placeholder inside a dollar quote is text
    ("SELECT $1 || $q$ $3 $q$ || E'\\' $4' -- $5\n + $2", 2),
    ("SELECT x$7, \"$8\", $1", 1),
    ("SELECT /* $4 /* $5 */ $6 */ 1", 0),
])
def test_placeholder_count(sql, n):
    assert placeholder_count(sql) == n


def test_param_numbers_read_as_the_scanner_reads_them():
    """The one-regex reading of $n must agree with `tokens` on every text it takes, including
    the ones that mix E'' strings, doubled quotes, words holding '$', numbers and dollar quotes
    (20,000 random texts of the characters that matter; a fixed seed, so a failure repeats)."""
    pieces = ["$", "$1", "$12", "9", "1e", "0x", ".", "a", "E", "e", "U", "&", "'", "''", '"', "-", "/", "*",
              "\\", " ", "\n", "_", "é", "$q$", "$é$", "(", ";", "x$1", "1_0"]
    rnd = random.Random(7)
    fast = 0
    for _ in range(20_000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 14)))
        expected = [int(text[t.start + 1:t.end]) for t in tokens(text) if t.kind is Kind.PARAM]
        assert param_numbers(text) == expected, text
        hits = [h for h in lexical._PARAMS_OR_DOLLAR.findall(text) if h]
        fast += "$" in text and not lexical._NEEDS_TOKENS_FOR_PARAMS.search(text) and \
            not any(h.endswith("$") for h in hits)
    assert fast > 2_000   # the regex's own path was taken, not only the fallback


@pytest.mark.parametrize("sql, shown", [
    ("ALTER ROLE app PASSWORD 'Hunter2'", "ALTER ROLE app PASSWORD '…'"),
    ("SELECT E'a\\'secret' , 42, t1.c2 FROM t1", "SELECT '…' , ?, t1.c2 FROM t1"),
    ("SELECT $é$secret$é$, U&'secret', x'ff', 0x1F, 1_000 -- secret\n", "SELECT '…', '…', '…', ?, ?"),
    ("SELECT /* secret /* nested */ secret */ 1", "SELECT ?"),
    ("SELECT \"col'x\" FROM t WHERE a = $1", "SELECT \"col'x\" FROM t WHERE a = $1"),
    ("INSERT INTO t VALUES ('truncated secr", "INSERT INTO t VALUES ('…'"),
])
def test_redact_query(sql, shown):
    assert redact_query(sql) == shown


def test_split_statements_non_ascii_dollar_tag_and_lines():
    script = ("\\restrict abc\n"
              "SET x = 1;\n"
              "-- a comment; not a statement\n"
              "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $fonction_é$\n"
              "  SELECT 'a;b'; SELECT 'c'\n"
              "$fonction_é$;\n"
              "/* one /* nested; */ comment; */ CREATE INDEX i ON t\n"
              "  (a) WHERE b = E'x\\';y';\n"
              "SELECT \"odd;name\" FROM t")
    assert list(split_statements(script)) == [
        (2, "SET x = 1"),
        (4, "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $fonction_é$\n  SELECT 'a;b'; SELECT 'c'\n"
            "$fonction_é$"),
        (7, "CREATE INDEX i ON t\n  (a) WHERE b = E'x\\';y'"),
        (9, "SELECT \"odd;name\" FROM t"),
    ]


def test_split_statements_meta_commands_only_between_statements():
    script = "\\connect db 'it''s\nSELECT 1\n\\gset\n;\n  \\echo ';'\nSELECT 2;"
    assert list(split_statements(script)) == [(2, "SELECT 1\n\\gset"), (6, "SELECT 2")]


@pytest.mark.parametrize("text, parts", [
    ("a, f(b, c), 'x,y', \"q,\"\"r\", [1, 2]", ["a", "f(b, c)", "'x,y'", '"q,""r"', "[1, 2]"]),
    ("E'\\', (', b", ["E'\\', ('", "b"]),   # E'\', (' is one string
    ("$q$,)$q$, b", ["$q$,)$q$", "b"]),
])
def test_split_top_level(text, parts):
    assert split_top_level(text) == parts


def test_brackets_outside_quotes():
    assert matching_paren("(a = E'\\')') + (b)", 0) == 11   # E'\')' is one string
    assert matching_paren("($$)$$)", 0) == 6 and matching_paren("(a", 0) == -1
    assert wraps("(a + ')')") and not wraps("(a) + (b)") and not wraps("a")


# --- the server reads the same texts the same way -------------------------------------------------

SERVER_READS = [
    ("$é$a;b$é$", "a;b"),
    ("$q$ $$ $Q$ $q$", " $$ $Q$ "),
    ("E'it\\'s'", "it's"),
    ("'a\\'", "a\\"),
    ("U&'d\\0061t'", "dat"),
    ("'x''y'", "x'y"),
    ("'a' -- c\r|| 'b'", "ab"),
    ("/* a /* b */ c */ 'd'", "d"),
]


def test_the_server_reads_the_tokens_where_the_scanner_ends_them(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET standard_conforming_strings = on")
        for text, value in SERVER_READS:
            literals = [t for t in tokens(text) if t.kind in (K.STRING, K.DOLLAR)]
            assert all(t.closed for t in literals), text
            assert conn.execute(f"SELECT ({text})::text").fetchone() == (value,), text
