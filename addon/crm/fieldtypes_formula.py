"""Formula fields: a small arithmetic language over number, money, percent and date fields.

Grammar (own tokenizer and recursive-descent parser; nothing is ever eval'd):

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | primary
    primary := NUMBER | NAME | NAME "(" [expr ("," expr)*] ")" | "(" expr ")"

NAME is a field key; functions are round(x[, places]), min(...), max(...), abs(x) and
coalesce(...) (its first operand that is not missing). date - date gives days, date ± number
gives a date; a missing operand, a type mismatch or a division by zero gives None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any

from addon.crm.fieldtypes_base import FieldError, to_decimal

MAX_EXPRESSION_CHARS = 500
MAX_DEPTH = 50
# name -> (fewest, most) arguments; None = any number
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "round": (1, 2),
    "min": (1, None),
    "max": (1, None),
    "abs": (1, 1),
    "coalesce": (1, None),
}
# Field types whose values a formula can use.
FORMULA_INPUT_TYPES = frozenset(
    {
        "number",
        "currency",
        "percent",
        "date",
        "datetime",
        "autonumber",
        "stats",
        "formula",
        "checkbox",
    }
)

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[-+*/(),]))"
)
_EVAL_CONTEXT = Context(prec=34, traps=[InvalidOperation, DivisionByZero, Overflow])
_MAX_DAYS = 3_700_000  # more than the whole range of `date`

Value = Decimal | date | None


@dataclass(frozen=True)
class _Token:
    kind: str  # "num" | "name" | "op" | "end"
    text: str
    pos: int


@dataclass(frozen=True)
class _Num:
    value: Decimal


@dataclass(frozen=True)
class _Ref:
    name: str


@dataclass(frozen=True)
class _Neg:
    operand: _Node


@dataclass(frozen=True)
class _Bin:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[_Node, ...]


_Node = _Num | _Ref | _Neg | _Bin | _Call


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expression):
        if expression[pos:].isspace():
            break
        match = _TOKEN_RE.match(expression, pos)
        if match is None or match.lastgroup is None:
            start = len(expression[pos:]) - len(expression[pos:].lstrip()) + pos
            raise FieldError(f"unexpected “{expression[start]}” at position {start + 1}")
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    tokens.append(_Token("end", "", len(expression)))
    return tokens


class _Parser:
    """Recursive descent over the token list, counting nesting depth."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.references: list[str] = []

    def peek(self) -> _Token:
        """The next token, not consumed."""
        return self.tokens[self.index]

    def take(self) -> _Token:
        """Consume and return the next token."""
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        """Consume an operator token that must be `text`."""
        token = self.take()
        if token.text != text or token.kind != "op":
            raise _unexpected(token, f"expected “{text}”")

    def enter(self) -> None:
        """One level deeper; refuse beyond MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FieldError(f"is nested too deeply (more than {MAX_DEPTH} levels)")

    def parse(self) -> _Node:
        """The whole expression; nothing may follow it."""
        node = self.expr()
        token = self.peek()
        if token.kind != "end":
            raise _unexpected(token)
        return node

    def expr(self) -> _Node:
        """Sums and differences."""
        node = self.term()
        while self.peek().kind == "op" and self.peek().text in "+-":
            op = self.take().text
            node = _Bin(op, node, self.term())
        return node

    def term(self) -> _Node:
        """Products and quotients."""
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text in "*/":
            op = self.take().text
            node = _Bin(op, node, self.unary())
        return node

    def unary(self) -> _Node:
        """A signed operand."""
        token = self.peek()
        if token.kind == "op" and token.text in "+-":
            self.take()
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return _Neg(operand) if token.text == "-" else operand
        return self.primary()

    def primary(self) -> _Node:
        """A number, field key, function call or parenthesised expression."""
        token = self.take()
        if token.kind == "num":
            return _Num(Decimal(token.text))
        if token.kind == "name":
            if self.peek().text == "(" and self.peek().kind == "op":
                return self.call(token)
            if token.text not in self.references:
                self.references.append(token.text)
            return _Ref(token.text)
        if token.kind == "op" and token.text == "(":
            self.enter()
            node = self.expr()
            self.expect(")")
            self.depth -= 1
            return node
        raise _unexpected(token)

    def call(self, name: _Token) -> _Node:
        """A function call with its arguments, arity checked."""
        if name.text not in FUNCTIONS:
            known = ", ".join(FUNCTIONS)
            raise FieldError(f"unknown function “{name.text}” (known: {known})")
        self.take()  # "("
        self.enter()
        args: list[_Node] = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            args.append(self.expr())
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                args.append(self.expr())
        self.expect(")")
        self.depth -= 1
        fewest, most = FUNCTIONS[name.text]
        if len(args) < fewest or (most is not None and len(args) > most):
            wanted = f"{fewest}" if fewest == most else f"{fewest} or {most}"
            wanted = f"at least {fewest}" if most is None else wanted
            raise FieldError(f"{name.text}() takes {wanted} argument(s), not {len(args)}")
        return _Call(name.text, tuple(args))


def _unexpected(token: _Token, hint: str = "") -> FieldError:
    suffix = f" ({hint})" if hint else ""
    if token.kind == "end":
        return FieldError(f"ends too early{suffix}")
    return FieldError(f"unexpected “{token.text}” at position {token.pos + 1}{suffix}")


def operand(value: Any) -> Value:
    """A stored value as a formula operand: a Decimal, a date, or None when unusable."""
    if value is None or isinstance(value, list):
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, dict):
        return operand(value.get("amount"))
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", text):
            try:
                return datetime.fromisoformat(text).date()
            except ValueError:
                return None
    return to_decimal(value.strip() if isinstance(value, str) else value)


def formula_operand(type_name: str, value: Any) -> Value:
    """A stored value of a field of this type as an operand (a percent becomes a fraction)."""
    result = operand(value)
    if type_name == "percent" and isinstance(result, Decimal):
        return result / 100
    return result


def _shift(day: date, days: Decimal) -> date | None:
    if days != days.to_integral_value() or abs(days) > _MAX_DAYS:
        return None
    try:
        return day + timedelta(days=int(days))
    except OverflowError:
        return None


def _binary(op: str, left: Value, right: Value) -> Value:
    if left is None or right is None:
        return None
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        return None if not right else left / right
    if op == "-" and isinstance(left, date) and isinstance(right, date):
        return Decimal((left - right).days)
    if op in "+-" and isinstance(left, date) and isinstance(right, Decimal):
        return _shift(left, right if op == "+" else -right)
    if op == "+" and isinstance(left, Decimal) and isinstance(right, date):
        return _shift(right, left)
    return None


def _function(name: str, args: list[Value]) -> Value:
    if name == "coalesce":
        return next((a for a in args if a is not None), None)
    if any(a is None for a in args):
        return None
    if name in ("min", "max"):
        if all(isinstance(a, Decimal) for a in args):
            numbers = [a for a in args if isinstance(a, Decimal)]
            return min(numbers) if name == "min" else max(numbers)
        if all(isinstance(a, date) for a in args):
            days = [a for a in args if isinstance(a, date)]
            return min(days) if name == "min" else max(days)
        return None
    first = args[0]
    if not isinstance(first, Decimal):
        return None
    if name == "abs":
        return abs(first)
    places = args[1] if len(args) > 1 else Decimal(0)
    if not isinstance(places, Decimal) or places != places.to_integral_value():
        return None
    if not -10 <= places <= 10:
        return None
    return first.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)


def _evaluate(node: _Node, values: Mapping[str, Any]) -> Value:
    if isinstance(node, _Num):
        return node.value
    if isinstance(node, _Ref):
        return operand(values.get(node.name))
    if isinstance(node, _Neg):
        inner = _evaluate(node.operand, values)
        return -inner if isinstance(inner, Decimal) else None
    if isinstance(node, _Bin):
        return _binary(node.op, _evaluate(node.left, values), _evaluate(node.right, values))
    return _function(node.name, [_evaluate(arg, values) for arg in node.args])


@dataclass(frozen=True)
class Formula:
    """A parsed formula: evaluate it against a record's values."""

    expression: str
    references: tuple[str, ...]
    root: _Node

    def evaluate(self, values: Mapping[str, Any]) -> Decimal | str | None:
        """The result: a Decimal, an ISO date text, or None (missing operand, x/0, mismatch)."""
        try:
            with localcontext(_EVAL_CONTEXT):
                result = _evaluate(self.root, values)
                if isinstance(result, Decimal):
                    result = +result  # rounds to the context precision
        except (ArithmeticError, ValueError):
            return None
        if isinstance(result, date):
            return result.isoformat()
        return result


def parse_formula(expression: Any) -> Formula:
    """Parse a formula, raising FieldError with the position of the first problem."""
    if not isinstance(expression, str):
        raise FieldError("formula must be a text")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise FieldError(f"formula is longer than {MAX_EXPRESSION_CHARS} characters")
    if not expression.strip():
        raise FieldError("formula is empty")
    parser = _Parser(_tokenize(expression))
    root = parser.parse()
    return Formula(expression.strip(), tuple(parser.references), root)


def check_formula_references(formula: Formula, field_types: Mapping[str, str]) -> None:
    """Refuse a formula naming fields that do not exist or hold no number or date."""
    for name in formula.references:
        type_name = field_types.get(name)
        if type_name is None:
            raise FieldError(f"formula uses “{name}”, which is not a field of this folder")
        if type_name not in FORMULA_INPUT_TYPES:
            raise FieldError(f"formula uses “{name}”, a {type_name} field (not a number or date)")
