"""The demo's sample repository: a tiny shop package, its tests, and a hand-written plan.

Everything runs on the Python standard library (unittest), so `boss demo` needs nothing but
Python, git and bash. The plan's workers use the built-in scripted agent, whose steps are the
fenced `agent-script` blocks in their instructions, so each outcome happens on purpose.
"""

from __future__ import annotations

from boss.core import yamlio

PY = "python3"

_CART = '''"""A shopping cart: lines of (name, unit price in cents, quantity)."""


class Cart:
    def __init__(self):
        self.items = []

    def add(self, name, unit_cents, quantity=1):
        self.items.append((name, unit_cents, quantity))

    def total(self):
        return sum(unit * quantity for _, unit, quantity in self.items)
'''

FILES: dict[str, str] = {
    "README.md": "# shop\n\nA tiny shop: carts, money, and soon discounts.\n\n"
    f"Run the tests: `{PY} -m unittest discover -s tests -t .`\n",
    "shop/__init__.py": '"""A tiny shop."""\n',
    "shop/money.py": '''"""Money is kept in cents and shown in dollars."""


def format_money(cents):
    """1234 -> '$12.34'."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100}.{cents % 100:02d}"
''',
    "shop/cart.py": _CART,
    "tests/__init__.py": "",
    "tests/test_money.py": """import unittest

from shop.money import format_money


class MoneyTest(unittest.TestCase):
    def test_dollars_and_cents(self):
        self.assertEqual(format_money(1234), "$12.34")

    def test_whole_dollars_keep_cents(self):
        self.assertEqual(format_money(1000), "$10.00")
""",
    "tests/test_cart.py": """import unittest

from shop.cart import Cart


class CartTest(unittest.TestCase):
    def test_total(self):
        cart = Cart()
        cart.add("tea", 250, 2)
        cart.add("cake", 400)
        self.assertEqual(cart.total(), 900)
""",
    "acceptance/__init__.py": "",
    "acceptance/test_discount.py": """import unittest


class DiscountTest(unittest.TestCase):
    def test_percent_code(self):
        from shop.discount import apply_code  # inside the test: missing code is a failure
        self.assertEqual(apply_code(10000, "SAVE10"), 9000)

    def test_unknown_code_changes_nothing(self):
        from shop.discount import apply_code
        self.assertEqual(apply_code(10000, "NOPE"), 10000)
""",
    "acceptance/test_checkout.py": """import unittest


class CheckoutTest(unittest.TestCase):
    def test_checkout_applies_the_code(self):
        from shop.cart import Cart
        from shop.checkout import checkout
        cart = Cart()
        cart.add("tea", 5000, 2)
        self.assertEqual(checkout(cart, "SAVE10"), "$90.00")
""",
    "acceptance/test_currency.py": """import unittest


class CurrencyTest(unittest.TestCase):
    def test_euros(self):
        from shop.currency import to_euros
        self.assertEqual(to_euros(1000), 920)
""",
    "acceptance/test_receipt.py": """import unittest


class ReceiptTest(unittest.TestCase):
    def test_receipt_lines(self):
        from shop.cart import Cart
        from shop.receipt import receipt
        cart = Cart()
        cart.add("tea", 250, 2)
        self.assertEqual(receipt(cart), ["2 x tea  $5.00", "TOTAL  $5.00"])
""",
    "acceptance/test_bulk.py": """import unittest


class BulkTest(unittest.TestCase):
    def test_ten_or_more_cost_ten_percent_less(self):
        from shop.cart import Cart
        cart = Cart()
        cart.add("pen", 100, 10)
        self.assertEqual(cart.total(), 900)
""",
    "acceptance/test_limit.py": """import unittest


class LimitTest(unittest.TestCase):
    def test_more_than_99_is_refused(self):
        from shop.cart import Cart
        with self.assertRaises(ValueError):
            Cart().add("pen", 100, 100)
""",
    "acceptance/test_compact.py": """import unittest


class CompactTest(unittest.TestCase):
    def test_whole_dollars_drop_the_cents(self):
        from shop.money import format_money
        self.assertEqual(format_money(1000), "$10")
""",
}


def _script(*steps: dict[str, object]) -> str:
    return "```agent-script\n" + yamlio.dump(list(steps)) + "```"


_DISCOUNT_BUGGY = (
    'CODES = {"SAVE10": 1}\n\n\ndef apply_code(cents, code):\n    return cents - CODES.get(code, 0) * 100\n'
)
_DISCOUNT = (
    '"""Discount codes: a code takes a percentage off."""\n\nCODES = {"SAVE10": 10}\n\n\n'
    "def apply_code(cents, code):\n    return cents * (100 - CODES.get(code, 0)) // 100\n"
)
_CHECKOUT = (
    '"""Checkout: the cart total, less the discount, formatted."""\n\n'
    "from shop.discount import apply_code\nfrom shop.money import format_money\n\n\n"
    "def checkout(cart, code=None):\n    return format_money(apply_code(cart.total(), code or ''))\n"
)
_RECEIPT = (
    '"""Receipts: one line per item, then the total."""\n\nfrom shop.money import format_money\n\n\n'
    "def receipt(cart):\n    lines = [f'{q} x {n}  {format_money(u * q)}' for n, u, q in cart.items]\n"
    "    return lines + [f'TOTAL  {format_money(cart.total())}']\n"
)
_BULK = _CART.replace(
    "        return sum(unit * quantity for _, unit, quantity in self.items)\n",
    "        total = 0\n        for _, unit, quantity in self.items:\n            line = unit * quantity\n"
    "            total += line * 9 // 10 if quantity >= 10 else line\n        return total\n",
)
_LIMIT = _CART.replace(
    "        self.items.append((name, unit_cents, quantity))\n\n    def total(self):\n"
    "        return sum(unit * quantity for _, unit, quantity in self.items)\n",
    "        if quantity > 99:\n            raise ValueError('at most 99 of one item')\n"
    "        self.items.append((name, unit_cents, quantity))\n\n    def total(self):\n"
    "        return sum(quantity * unit for _, unit, quantity in self.items)\n",
)
_COMPACT = FILES["shop/money.py"].replace(
    '    return f"{sign}${cents // 100}.{cents % 100:02d}"\n',
    '    if cents % 100 == 0:\n        return f"{sign}${cents // 100}"\n'
    '    return f"{sign}${cents // 100}.{cents % 100:02d}"\n',
)


_S1 = _script({"write": {"shop/discount.py": _DISCOUNT_BUGGY}}, {"write": {"shop/discount.py": _DISCOUNT}})
_S2 = _script({"write": {"shop/checkout.py": _CHECKOUT}})
_S3 = _script({"write": {"shop/cart.py": _BULK}})
_S4 = _script({"write": {"shop/cart.py": _LIMIT}})
_S5 = _script({"write": {"shop/money.py": _COMPACT}})


_CURRENCY = _script(
    {
        "shell": "rm -rf shop/__pycache__",
        "write": {"shop/currency.py": "def to_euros(cents):\n    return cents * 90 // 100\n"},
    },
    {"write": {"shop/currency.py": "def to_euros(cents):\n    return round(cents * 0.95)\n"}},
)
_RECEIPT_STEPS = _script(
    {"write": {"shop/receipt.py": _RECEIPT}, "append": {"README.md": "\nReceipts: see shop/receipt.py.\n"}}
)


def plan_markdown() -> str:
    """The hand-written plan of the demo: seven workers, one for each outcome."""
    t = f"{PY} -m unittest"
    return f"""# Shop features
Add discount codes, checkout, receipts, bulk pricing and more to the shop, in parallel.

- integration test: {PY} -m unittest discover -s tests -t .
- base: main

## W1: Discount codes
- scope: ^shop/discount\\.py$
- test: {t} acceptance.test_discount
- agent: scripted

Add `shop/discount.py` with `apply_code(cents, code)`: SAVE10 takes 10% off, unknown codes
change nothing. (The scripted agent gets it wrong once, then reads the test output and fixes it.)

{_S1}

## W2: Checkout
- scope: ^shop/checkout\\.py$
- depends on: W1
- test: {t} acceptance.test_checkout
- agent: scripted

Add `shop/checkout.py`: `checkout(cart, code)` returns the discounted total, formatted. It
builds on W1's discount codes, so it starts from W1's branch.

{_S2}

## W3: Euro prices
- scope: ^shop/currency\\.py$
- test: {t} acceptance.test_currency
- agent: scripted
- max_iterations: 2
- max_strategies: 2

Add `shop/currency.py` with `to_euros(cents)` at today's rate. (The scripted agent never finds
the right rate: after two strategies of two iterations it gives up and writes a blocker report.
On the way it asks to run `rm -rf shop/__pycache__`, a TIER 3 command: the guard blocks it and
the request waits for a person.)

{_CURRENCY}

## W4: Receipts
- scope: ^shop/receipt\\.py$
- test: {t} acceptance.test_receipt
- agent: scripted

Add `shop/receipt.py`. (The scripted agent also edits README.md, outside its scope: the work
passes its test but is quarantined for review instead of merged.)

{_RECEIPT_STEPS}

## W5: Bulk pricing
- scope: ^shop/cart\\.py$
- test: {t} acceptance.test_bulk
- agent: scripted

Ten or more of one item cost 10% less.

{_S3}

## W6: Quantity limit
- scope: ^shop/cart\\.py$
- test: {t} acceptance.test_limit
- agent: scripted

Refuse more than 99 of one item. (It rewrites the same lines of `shop/cart.py` as W5: both
pass their tests alone, and the merge ceremony finds the conflict.)

{_S4}

## W7: Compact money format
- scope: ^shop/money\\.py$
- test: {t} acceptance.test_compact
- agent: scripted

Show whole dollars without cents. (It passes its own test, but breaks `tests/test_money.py`
in the integration suite: the ceremony drops that merge and keeps the others.)

{_S5}
"""


EXPECTED = {
    "W1": "MERGED",
    "W2": "MERGED",
    "W3": "FAILED",
    "W4": "QUARANTINED",
    "W5": "MERGED",
    "W6": "CONFLICT",
    "W7": "REVERTED",
}
