"""The command-line grammar of the simulated Android shell (mksh), as a small recursive descent.

Why hand-written: the third-party Python shell parsers do not fit. ``bashlex`` (the one port of a
real shell's parser) is GPLv3+, which an Apache-2.0 project cannot take as a dependency, and it
parses bash, not mksh. ``shlex`` (stdlib) tokenises ``|``, ``&&``, ``;`` and ``>`` with
``punctuation_chars``, but in POSIX mode it drops the quoting (``'$HOME'`` and ``$HOME`` become the
same token, so does a quoted ``'|'`` and the pipe operator, and ``2>&1`` cannot be told from
``2 >&1``), and in non-POSIX mode it splits ``a"b c"`` wrongly and ignores backslashes. What a
client sends needs quoting kept per piece of a word, so expansion, field splitting and globbing
apply only to the unquoted pieces, as sh does. The grammar is POSIX sh's, reduced to what a
client's one-line ``adb shell`` command uses::

    list     := and_or ((';' | '&' | NEWLINE) and_or?)*
    and_or   := pipeline (('&&' | '||') NEWLINE* pipeline)*
    pipeline := ['!'] command ('|' NEWLINE* command)*
    command  := simple | '(' list ')' redir* | '{' list '}' redir*
    simple   := (ASSIGNMENT | redir)* (WORD | redir)*
    redir    := [IO_NUMBER] ('<' | '>' | '>>' | '>|' | '<>' | '<&' | '>&') WORD

Words keep their pieces: literal text (quoted or not), ``$NAME``/``${NAME}``/``${NAME:-word}``
and ``$?``-style specials, and command substitution (``$(...)``, backquotes), parsed here too.
No loops, functions, ``case``/``if``, here-documents or arithmetic: those are reported as a
syntax error rather than misread. Nesting (``$(...)`` inside ``$(...)``) is bounded.

Syntax errors carry mksh's texts (``syntax error: 'X' unexpected``, ``syntax error: unexpected
EOF``, ``no closing quote``); the shell puts ``/system/bin/sh: `` in front and exits 1, as
mksh's ``yyerror`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MAX_NESTING = 8
"""Command substitutions (and ``sh -c``) nested deeper than this are refused: bounded recursion."""

MAX_LINE = 256 * 1024
"""Longest command line parsed; adbd itself takes far less in one OPEN."""

_OPERATORS = (
    "&&",
    "||",
    ";;",
    ">>",
    "<<",
    "<&",
    ">&",
    "<>",
    ">|",
    "|&",
    ";",
    "&",
    "|",
    "<",
    ">",
    "(",
    ")",
)
_META = set(";&|<>()")
_SPECIAL_PARAMS = set("?$#!-@*0123456789")
_REDIRECTS = {"<", ">", ">>", ">|", "<>", "<&", ">&"}
_RESERVED = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "case",
    "esac",
    "for",
    "while",
    "until",
    "do",
    "done",
    "function",
    "select",
    "[[",
    "]]",
}


class ShellSyntaxError(Exception):
    """A command line mksh would refuse to run; the argument is mksh's message."""


@dataclass(frozen=True)
class Part:
    """One piece of a word.

    ``lit``: text (``quoted`` when it came from quotes or a backslash, so it is neither split nor
    globbed); ``param``: ``$NAME`` (``op`` is ``""``, ``"-"``, ``":-"``, ``"+"``, ``":+"`` or
    ``"#"`` for ``${#NAME}``, ``arg`` the word after the operator); ``cmdsub``: ``$(...)``.
    """

    kind: Literal["lit", "param", "cmdsub"]
    text: str = ""
    quoted: bool = False
    op: str = ""
    arg: Word | None = None
    body: ListNode | None = None


@dataclass(frozen=True)
class Word:
    """A shell word: its pieces in order."""

    parts: tuple[Part, ...]

    @property
    def literal(self) -> str | None:
        """The word's text if it is plain unquoted text (a reserved word or an assignment)."""
        if all(p.kind == "lit" and not p.quoted for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None


@dataclass(frozen=True)
class Redirect:
    """``[fd]op target``: ``fd`` is the default for the operator when none was written."""

    fd: int
    op: str
    target: Word


@dataclass
class Simple:
    """A simple command: assignments, words and redirections, in the order written."""

    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Group:
    """``( list )`` (a subshell) or ``{ list; }`` (the current shell), with redirections."""

    body: ListNode
    subshell: bool
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    """Commands joined by ``|``; ``negate`` for a leading ``!``."""

    commands: list[Simple | Group]
    negate: bool = False


@dataclass
class AndOr:
    """A pipeline followed by ``&&``/``||`` pipelines."""

    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


@dataclass
class ListNode:
    """The and-or lists of a command line, run one after the other."""

    items: list[AndOr] = field(default_factory=list)


Token = tuple[str, object]  # ("word", Word) | ("op", str) | ("io", int) | ("nl", "") | ("eof", "")


def parse(line: str) -> ListNode:
    """The command line's syntax tree, or :class:`ShellSyntaxError` with mksh's message."""
    if len(line) > MAX_LINE:
        raise ShellSyntaxError("command line too long")
    parser = _Parser(line, 0, 0)
    tree = parser.parse_list(top=True)
    kind, value = parser.peek()
    if kind != "eof":
        raise ShellSyntaxError(f"syntax error: '{value}' unexpected")
    return tree


class _Parser:
    """Lexer and parser over one string; nested ``$(...)`` get a parser of their own."""

    def __init__(self, src: str, pos: int, depth: int, closer: str = "") -> None:
        if depth > MAX_NESTING:
            raise ShellSyntaxError("expression recurses too deeply")
        self.src, self.pos, self.depth, self.closer = src, pos, depth, closer
        self._cache: tuple[int, Token, int] | None = None

    # --- tokens ----------------------------------------------------------------------------------

    def peek(self) -> Token:
        """The next token, not consumed."""
        if self._cache is None or self._cache[0] != self.pos:
            token, end = self._lex(self.pos)
            self._cache = (self.pos, token, end)
        return self._cache[1]

    def take(self) -> Token:
        """The next token, consumed."""
        token = self.peek()
        assert self._cache is not None
        self.pos = self._cache[2]
        return token

    def _lex(self, i: int) -> tuple[Token, int]:
        src = self.src
        while i < len(src) and src[i] in " \t":
            i += 1
        if i < len(src) and src[i] == "\\" and src.startswith("\\\n", i):
            return self._lex(i + 2)
        if i < len(src) and src[i] == "#":
            while i < len(src) and src[i] != "\n":
                i += 1
        if i >= len(src):
            return ("eof", ""), i
        if src[i] == "\n":
            return ("nl", ""), i + 1
        if self.closer and src[i] == self.closer:
            return ("eof", ""), i
        for op in _OPERATORS:
            if src.startswith(op, i):
                return ("op", op), i + len(op)
        j = i
        while j < len(src) and src[j].isdigit():
            j += 1
        if j > i and j < len(src) and src[j] in "<>":
            return ("io", int(src[i:j])), j
        word, end = self._word(i)
        return ("word", word), end

    def _word(self, i: int) -> tuple[Word, int]:
        src = self.src
        parts: list[Part] = []
        buf: list[str] = []

        def flush(quoted: bool = False) -> None:
            if buf:
                parts.append(Part("lit", "".join(buf), quoted))
                buf.clear()

        if src[i] == "~" and (i + 1 == len(src) or src[i + 1] in "/ \t\n;&|<>()"):
            parts.append(Part("param", "HOME"))
            i += 1
        while i < len(src):
            c = src[i]
            if c in " \t\n" or c in _META or (self.closer and c == self.closer):
                break
            if c == "\\":
                flush()
                if i + 1 < len(src):
                    if src[i + 1] != "\n":
                        parts.append(Part("lit", src[i + 1], True))
                    i += 2
                else:
                    parts.append(Part("lit", "\\", True))
                    i += 1
            elif c == "'":
                flush()
                end = src.find("'", i + 1)
                if end < 0:
                    raise ShellSyntaxError("no closing quote")
                parts.append(Part("lit", src[i + 1 : end], True))
                i = end + 1
            elif c == '"':
                flush()
                i = self._double(i + 1, parts)
            elif c == "$" or c == "`":
                flush()
                part, i = self._dollar(i, quoted=False)
                parts.append(part)
            else:
                buf.append(c)
                i += 1
        flush()
        return Word(tuple(parts)), i

    def _double(self, i: int, parts: list[Part]) -> int:
        """The inside of ``"..."`` from ``i``; returns the index after the closing quote."""
        src = self.src
        buf: list[str] = []
        start_len = len(parts)
        while True:
            if i >= len(src):
                raise ShellSyntaxError("no closing quote")
            c = src[i]
            if c == '"':
                i += 1
                break
            if c == "\\" and i + 1 < len(src) and src[i + 1] in '$`"\\\n':
                if src[i + 1] != "\n":
                    buf.append(src[i + 1])
                i += 2
            elif c in "$`":
                if buf:
                    parts.append(Part("lit", "".join(buf), True))
                    buf.clear()
                part, i = self._dollar(i, quoted=True)
                parts.append(part)
            else:
                buf.append(c)
                i += 1
        if buf or len(parts) == start_len:
            parts.append(Part("lit", "".join(buf), True))  # "" is an empty word, not none
        return i

    def _dollar(self, i: int, quoted: bool) -> tuple[Part, int]:
        """``$…`` or a backquote at ``i``: a parameter or a command substitution."""
        src = self.src
        if src[i] == "`":
            end = i + 1
            while end < len(src) and src[end] != "`":
                end += 2 if src[end] == "\\" else 1
            if end >= len(src):
                raise ShellSyntaxError("no closing quote")
            inner = src[i + 1 : end].replace("\\`", "`").replace("\\\\", "\\")
            body = _Parser(inner, 0, self.depth + 1).parse_list(top=True)
            return Part("cmdsub", quoted=quoted, body=body), end + 1
        nxt = src[i + 1] if i + 1 < len(src) else ""
        if src.startswith("$((", i):
            raise ShellSyntaxError("arithmetic expansion is not supported by the simulator")
        if nxt == "(":
            sub = _Parser(src, i + 2, self.depth + 1, closer=")")
            body = sub.parse_list(top=True)
            if sub.pos >= len(src) or src[sub.pos] != ")":
                raise ShellSyntaxError("syntax error: unexpected EOF")
            return Part("cmdsub", quoted=quoted, body=body), sub.pos + 1
        if nxt == "{":
            return self._braced(i + 2, quoted)
        if nxt in _SPECIAL_PARAMS and nxt:
            return Part("param", nxt, quoted), i + 2
        j = i + 1
        while j < len(src) and (src[j].isalnum() or src[j] == "_"):
            j += 1
        if j == i + 1 or src[i + 1].isdigit():
            return Part("lit", "$", quoted), i + 1
        return Part("param", src[i + 1 : j], quoted), j

    def _braced(self, i: int, quoted: bool) -> tuple[Part, int]:
        """``${NAME}``, ``${#NAME}``, ``${NAME:-word}`` (and ``-``, ``+``, ``:+``)."""
        src = self.src
        length = src.startswith("#", i) and i + 1 < len(src) and src[i + 1] != "}"
        if length:
            i += 1
        j = i
        if j < len(src) and src[j] in _SPECIAL_PARAMS:
            j += 1
        else:
            while j < len(src) and (src[j].isalnum() or src[j] == "_"):
                j += 1
        name = src[i:j]
        if not name:
            raise ShellSyntaxError(f"{src[i - 2 : i + 1]}: bad substitution")
        if length:
            if not src.startswith("}", j):
                raise ShellSyntaxError("bad substitution")
            return Part("param", name, quoted, op="#"), j + 1
        if src.startswith("}", j):
            return Part("param", name, quoted), j + 1
        for op in (":-", ":+", "-", "+", "%%", "%", "##", "#"):
            if src.startswith(op, j):
                end = _matching_brace(src, j + len(op))
                inner = _Parser(src[j + len(op) : end], 0, self.depth + 1)
                arg, _ = inner._word(0) if end > j + len(op) else (Word(()), 0)
                return Part("param", name, quoted, op=op, arg=arg), end + 1
        raise ShellSyntaxError(f"${{{name}{src[j : j + 1]}: bad substitution")

    # --- grammar ---------------------------------------------------------------------------------

    def _skip_newlines(self) -> None:
        while self.peek()[0] == "nl":
            self.take()

    def parse_list(self, top: bool = False) -> ListNode:
        """``list``: up to the end of input, a closing ``)`` or (inside ``{``) a ``}``."""
        node = ListNode()
        while True:
            self._skip_newlines()
            kind, value = self.peek()
            if kind == "eof" or (kind == "op" and value == ")"):
                return node
            if kind == "word" and isinstance(value, Word) and value.literal == "}" and not top:
                return node
            node.items.append(self._and_or())
            kind, value = self.peek()
            if (kind == "op" and value in (";", "&")) or kind == "nl":
                self.take()
            elif kind == "eof" or (kind == "op" and value == ")"):
                return node
            elif not (kind == "word" and isinstance(value, Word) and value.literal == "}"):
                raise ShellSyntaxError(f"syntax error: '{value}' unexpected")

    def _and_or(self) -> AndOr:
        node = AndOr(self._pipeline())
        while True:
            kind, value = self.peek()
            if kind == "op" and value in ("&&", "||"):
                self.take()
                self._skip_newlines()
                node.rest.append((str(value), self._pipeline()))
            else:
                return node

    def _pipeline(self) -> Pipeline:
        negate = False
        kind, value = self.peek()
        if kind == "word" and isinstance(value, Word) and value.literal == "!":
            self.take()
            negate = True
        commands = [self._command()]
        while self.peek() == ("op", "|"):
            self.take()
            self._skip_newlines()
            commands.append(self._command())
        return Pipeline(commands, negate)

    def _command(self) -> Simple | Group:
        kind, value = self.peek()
        if kind == "eof":
            raise ShellSyntaxError("syntax error: unexpected EOF")
        if kind == "op" and value == "(":
            self.take()
            body = self.parse_list()
            if self.take() != ("op", ")"):
                raise ShellSyntaxError("syntax error: unexpected EOF")
            return Group(body, True, self._redirects())
        if kind == "word" and isinstance(value, Word) and value.literal == "{":
            self.take()
            body = self.parse_list()
            kind, value = self.take()
            if not (kind == "word" and isinstance(value, Word) and value.literal == "}"):
                raise ShellSyntaxError("syntax error: unexpected EOF")
            return Group(body, False, self._redirects())
        if kind == "word" and isinstance(value, Word) and value.literal in _RESERVED:
            raise ShellSyntaxError(f"syntax error: '{value.literal}' unexpected")
        return self._simple()

    def _redirects(self) -> list[Redirect]:
        found: list[Redirect] = []
        while True:
            redirect = self._redirect()
            if redirect is None:
                return found
            found.append(redirect)

    def _redirect(self) -> Redirect | None:
        kind, value = self.peek()
        fd: int | None = None
        if kind == "io":
            self.take()
            fd = int(str(value))
            kind, value = self.peek()
        if kind == "op" and value == "<<":
            raise ShellSyntaxError("here documents are not supported by the simulator")
        if kind != "op" or value not in _REDIRECTS:
            if fd is not None:
                raise ShellSyntaxError(f"syntax error: '{value}' unexpected")
            return None
        self.take()
        op = str(value)
        kind, target = self.take()
        if kind != "word" or not isinstance(target, Word):
            shown = "newline" if kind in ("nl", "eof") else target
            raise ShellSyntaxError(f"syntax error: '{shown}' unexpected")
        default = 0 if op in ("<", "<&", "<>") else 1
        return Redirect(default if fd is None else fd, op, target)

    def _simple(self) -> Simple:
        node = Simple()
        while True:
            redirect = self._redirect()
            if redirect is not None:
                node.redirects.append(redirect)
                continue
            kind, value = self.peek()
            if kind != "word" or not isinstance(value, Word):
                break
            self.take()
            name = _assignment_name(value)
            if name is not None and not node.words:
                node.assigns.append((name, _after_equals(value)))
            else:
                node.words.append(value)
        if not (node.words or node.assigns or node.redirects):
            kind, value = self.peek()
            if kind == "eof":
                raise ShellSyntaxError("syntax error: unexpected EOF")
            shown = "newline" if kind == "nl" else value
            raise ShellSyntaxError(f"syntax error: '{shown}' unexpected")
        return node


def _matching_brace(src: str, i: int) -> int:
    """The index of the ``}`` closing a ``${…`` whose operand starts at ``i``."""
    depth = 0
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            end = src.find("'", i + 1)
            i = len(src) if end < 0 else end + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ShellSyntaxError("syntax error: unexpected EOF")


def _assignment_name(word: Word) -> str | None:
    """``NAME`` when the word is ``NAME=…`` with an unquoted, valid name before the ``=``."""
    first = word.parts[0] if word.parts else None
    if first is None or first.kind != "lit" or first.quoted or "=" not in first.text:
        return None
    name = first.text.split("=", 1)[0]
    if (
        name
        and (name[0].isalpha() or name[0] == "_")
        and all(c.isalnum() or c == "_" for c in name)
    ):
        return name
    return None


def _after_equals(word: Word) -> Word:
    """The value part of an assignment word."""
    first, rest = word.parts[0], word.parts[1:]
    value = first.text.split("=", 1)[1]
    head = (Part("lit", value, first.quoted),) if value else ()
    return Word(head + tuple(rest))
