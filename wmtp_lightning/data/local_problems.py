"""The project's own small CodeContests-style problem set (written for this repository).

No real CodeContests sample can be had offline, so the local demo and the tests use these
problems. Each has a statement with input/output spec, tests (the first `n_public` are public),
a difficulty from CodeContests' enum spread over the default bins (low 1-3, medium 4-7,
high 8-11), two or more correct Python 3 solutions and two or more *plausibly* wrong ones
(off-by-one, missed edge case, wrong output format, too slow). `tests/data/test_local_problems.py`
runs every solution on every test in the sandbox and checks each label.

`scripts/make_local_codecontests.py` writes them out in the Hugging Face `deepmind/code_contests`
schema, which then goes through the same conversion as the real dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    name: str
    difficulty: int
    description: str
    tests: list[tuple[str, str]]
    correct: list[str]
    incorrect: list[str]
    split: str = "train"
    n_public: int = 2
    source: int = 2  # CODEFORCES
    cf_rating: int = 0
    tags: list[str] = field(default_factory=list)


def _p(
    name: str,
    difficulty: int,
    description: str,
    tests: list[tuple[str, str]],
    correct: list[str],
    incorrect: list[str],
    **kw: object,
) -> Problem:
    return Problem(
        name,
        difficulty,
        description.strip() + "\n",
        tests,
        [c.strip() + "\n" for c in correct],
        [c.strip() + "\n" for c in incorrect],
        **kw,
    )  # type: ignore[arg-type]


PROBLEMS: list[Problem] = [
    _p(
        "sum_of_two",
        1,
        """
Given two integers a and b, print their sum.

Input
The only line contains two integers a and b (-10^9 <= a, b <= 10^9).

Output
Print a + b.
""",
        [("1 2\n", "3\n"), ("-5 5\n", "0\n"), ("1000000000 1000000000\n", "2000000000\n"), ("-7 -8\n", "-15\n")],
        [
            "a, b = map(int, input().split())\nprint(a + b)",
            "import sys\nprint(sum(map(int, sys.stdin.read().split())))",
        ],
        [
            "a, b = map(int, input().split())\nprint(a - b if b < 0 else a + b)",
            "a, b = input().split()\nprint(a + b)",
        ],
    ),
    _p(
        "max_of_array",
        1,
        """
You are given n integers. Print the largest of them.

Input
The first line contains n (1 <= n <= 100). The second line contains n integers a_i (-1000 <= a_i <= 1000).

Output
Print the maximum value.
""",
        [
            ("3\n1 5 2\n", "5\n"),
            ("1\n-4\n", "-4\n"),
            ("4\n-3 -1 -2 -9\n", "-1\n"),
            ("5\n7 7 7 7 7\n", "7\n"),
            ("3\n9 1 2\n", "9\n"),
        ],
        [
            "n = int(input())\na = list(map(int, input().split()))\nprint(max(a))",
            "n = int(input())\nbest = None\nfor x in map(int, input().split()):\n    if best is None or x > best:\n        best = x\nprint(best)",
        ],
        [
            "n = int(input())\nbest = 0\nfor x in map(int, input().split()):\n    best = max(best, x)\nprint(best)",
            "n = int(input())\na = list(map(int, input().split()))\nprint(max(a[1:]) if n > 1 else a[0])",
        ],
    ),
    _p(
        "even_or_odd",
        1,
        """
Given an integer n, print "EVEN" if it is even and "ODD" otherwise.

Input
One integer n (-10^9 <= n <= 10^9).

Output
Print EVEN or ODD.
""",
        [("4\n", "EVEN\n"), ("7\n", "ODD\n"), ("-3\n", "ODD\n"), ("0\n", "EVEN\n")],
        [
            "n = int(input())\nprint('EVEN' if n % 2 == 0 else 'ODD')",
            "n = int(input())\nprint(['EVEN', 'ODD'][n & 1])",
        ],
        [
            "n = int(input())\nprint('Even' if n % 2 == 0 else 'Odd')",
            "n = int(input())\nprint('EVEN' if n % 2 == 0 and n > 0 else 'ODD')",
        ],
    ),
    _p(
        "count_vowels",
        2,
        """
Count the vowels (a, e, i, o, u) in a lowercase word.

Input
One line with a word of 1 to 100 lowercase Latin letters.

Output
Print the number of vowels.
""",
        [("hello\n", "2\n"), ("rhythm\n", "0\n"), ("aeiou\n", "5\n"), ("queue\n", "4\n")],
        [
            "s = input().strip()\nprint(sum(c in 'aeiou' for c in s))",
            "s = input().strip()\nprint(len([c for c in s if c in 'aeiou']))",
        ],
        [
            "s = input().strip()\nprint(sum(c in 'aeiouy' for c in s))",
            "s = input().strip()\nprint(len(set(c for c in s if c in 'aeiou')))",
        ],
    ),
    _p(
        "reverse_words",
        2,
        """
Reverse the order of the words in a line. Words are separated by single spaces.

Input
One line of 1 to 100 words, each of 1 to 10 lowercase letters.

Output
Print the words in reverse order, separated by single spaces.
""",
        [
            ("hello world\n", "world hello\n"),
            ("a\n", "a\n"),
            ("one two three\n", "three two one\n"),
            ("x y\n", "y x\n"),
        ],
        [
            "print(' '.join(input().split()[::-1]))",
            "w = input().split()\nw.reverse()\nprint(*w)",
        ],
        [
            "print(input().strip()[::-1])",
            "w = input().split()\nprint(' '.join(w[-1:0:-1]))",
        ],
    ),
    _p(
        "sum_to_n",
        3,
        """
Print the sum 1 + 2 + ... + n.

Input
One integer n (1 <= n <= 10^12).

Output
Print the sum.
""",
        [("3\n", "6\n"), ("1\n", "1\n"), ("100\n", "5050\n"), ("1000000000000\n", "500000000000500000000000\n")],
        [
            "n = int(input())\nprint(n * (n + 1) // 2)",
            "n = int(input())\nprint((n * n + n) // 2)",
        ],
        [
            "n = int(input())\ns = 0\nfor i in range(1, n + 1):\n    s += i\nprint(s)",
            "n = int(input())\nprint(n * (n - 1) // 2)",
        ],
        n_public=2,
    ),
    _p(
        "fizzbuzz_line",
        3,
        """
For every i from 1 to n print "Fizz" if i is divisible by 3, "Buzz" if by 5, "FizzBuzz" if by both,
and i otherwise. Print all answers on one line separated by spaces.

Input
One integer n (1 <= n <= 100).

Output
n tokens separated by spaces.
""",
        [
            ("5\n", "1 2 Fizz 4 Buzz\n"),
            ("1\n", "1\n"),
            ("15\n", "1 2 Fizz 4 Buzz Fizz 7 8 Fizz Buzz 11 Fizz 13 14 FizzBuzz\n"),
        ],
        [
            "n = int(input())\nout = []\nfor i in range(1, n + 1):\n    s = ('Fizz' if i % 3 == 0 else '') + ('Buzz' if i % 5 == 0 else '')\n    out.append(s or str(i))\nprint(' '.join(out))",
            "n = int(input())\nr = []\nfor i in range(1, n + 1):\n    if i % 15 == 0:\n        r.append('FizzBuzz')\n    elif i % 3 == 0:\n        r.append('Fizz')\n    elif i % 5 == 0:\n        r.append('Buzz')\n    else:\n        r.append(str(i))\nprint(*r)",
        ],
        [
            "n = int(input())\nr = []\nfor i in range(1, n + 1):\n    if i % 3 == 0:\n        r.append('Fizz')\n    elif i % 5 == 0:\n        r.append('Buzz')\n    elif i % 15 == 0:\n        r.append('FizzBuzz')\n    else:\n        r.append(str(i))\nprint(*r)",
            "n = int(input())\nr = []\nfor i in range(1, n):\n    s = ('Fizz' if i % 3 == 0 else '') + ('Buzz' if i % 5 == 0 else '')\n    r.append(s or str(i))\nprint(*r)",
        ],
        split="valid",
    ),
    _p(
        "palindrome_check",
        2,
        """
Check whether a string reads the same forwards and backwards.

Input
One line with a string of 1 to 100 lowercase letters.

Output
Print YES if it is a palindrome and NO otherwise.
""",
        [("abba\n", "YES\n"), ("abc\n", "NO\n"), ("a\n", "YES\n"), ("abca\n", "NO\n"), ("racecar\n", "YES\n")],
        [
            "s = input().strip()\nprint('YES' if s == s[::-1] else 'NO')",
            "s = input().strip()\nok = all(s[i] == s[-1 - i] for i in range(len(s) // 2))\nprint('YES' if ok else 'NO')",
        ],
        [
            "s = input().strip()\nprint('YES' if s[0] == s[-1] else 'NO')",
            "s = input().strip()\nprint(s == s[::-1])",
        ],
        split="test",
    ),
    _p(
        "count_divisors",
        4,
        """
Count the positive divisors of n.

Input
One integer n (1 <= n <= 10^12).

Output
Print the number of divisors of n.
""",
        [("6\n", "4\n"), ("1\n", "1\n"), ("36\n", "9\n"), ("999999999989\n", "2\n"), ("1000000000000\n", "169\n")],
        [
            "n = int(input())\nc = 0\ni = 1\nwhile i * i <= n:\n    if n % i == 0:\n        c += 1 if i * i == n else 2\n    i += 1\nprint(c)",
            "n = int(input())\nres = 1\np = 2\nm = n\nwhile p * p <= m:\n    e = 0\n    while m % p == 0:\n        m //= p\n        e += 1\n    res *= e + 1\n    p += 1\nif m > 1:\n    res *= 2\nprint(res)",
        ],
        [
            "n = int(input())\nprint(sum(1 for i in range(1, n + 1) if n % i == 0))",
            "n = int(input())\nc = 0\ni = 1\nwhile i * i <= n:\n    if n % i == 0:\n        c += 2\n    i += 1\nprint(c)",
        ],
    ),
    _p(
        "second_largest",
        4,
        """
Print the second largest distinct value among n integers, or -1 if all values are equal.

Input
The first line contains n (1 <= n <= 100), the second n integers a_i (1 <= a_i <= 1000).

Output
Print the second largest distinct value or -1.
""",
        [("4\n1 3 3 2\n", "2\n"), ("3\n5 5 5\n", "-1\n"), ("2\n9 1\n", "1\n"), ("1\n4\n", "-1\n")],
        [
            "n = int(input())\nv = sorted(set(map(int, input().split())))\nprint(v[-2] if len(v) > 1 else -1)",
            "n = int(input())\na = list(map(int, input().split()))\nm = max(a)\nrest = [x for x in a if x != m]\nprint(max(rest) if rest else -1)",
        ],
        [
            "n = int(input())\na = sorted(map(int, input().split()))\nprint(a[-2] if n > 1 else -1)",
            "n = int(input())\nv = sorted(set(map(int, input().split())))\nprint(v[-2] if len(v) > 1 else v[0])",
        ],
    ),
    _p(
        "fibonacci_mod",
        9,
        """
Print the n-th Fibonacci number modulo 10^9 + 7, where F(0) = 0 and F(1) = 1.

Input
One integer n (0 <= n <= 10^18).

Output
Print F(n) mod 1000000007.
""",
        [
            ("10\n", "55\n"),
            ("0\n", "0\n"),
            ("1\n", "1\n"),
            ("100\n", "687995182\n"),
            ("1000000000000000000\n", "209783453\n"),
        ],
        [
            "MOD = 10**9 + 7\ndef fib(n):\n    if n == 0:\n        return (0, 1)\n    a, b = fib(n // 2)\n    c = a * ((2 * b - a) % MOD) % MOD\n    d = (a * a + b * b) % MOD\n    return (d, (c + d) % MOD) if n % 2 else (c, d)\nprint(fib(int(input()))[0])",
            "MOD = 10**9 + 7\ndef mul(x, y):\n    return [[sum(x[i][k] * y[k][j] for k in range(2)) % MOD for j in range(2)] for i in range(2)]\nn = int(input())\nr = [[1, 0], [0, 1]]\nm = [[1, 1], [1, 0]]\nwhile n:\n    if n & 1:\n        r = mul(r, m)\n    m = mul(m, m)\n    n >>= 1\nprint(r[0][1])",
        ],
        [
            "MOD = 10**9 + 7\nn = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, (a + b) % MOD\nprint(a)",
            "MOD = 10**9 + 7\ndef mul(x, y):\n    return [[sum(x[i][k] * y[k][j] for k in range(2)) % MOD for j in range(2)] for i in range(2)]\nn = int(input())\nr = [[1, 0], [0, 1]]\nm = [[1, 1], [1, 0]]\nwhile n:\n    if n & 1:\n        r = mul(r, m)\n    m = mul(m, m)\n    n >>= 1\nprint(r[0][0])",
        ],
    ),
    _p(
        "prefix_sums_queries",
        8,
        """
Given an array of n integers and q queries (l, r), print the sum of a_l..a_r (1-based, inclusive)
for every query.

Input
The first line contains n and q (1 <= n, q <= 10^5). The second line contains n integers
(|a_i| <= 10^9). Each of the next q lines contains l and r (1 <= l <= r <= n).

Output
Print q lines, the answers.
""",
        [
            ("5 3\n1 2 3 4 5\n1 5\n2 3\n4 4\n", "15\n5\n4\n"),
            ("1 1\n-7\n1 1\n", "-7\n"),
            ("4 2\n10 -10 10 -10\n1 2\n2 4\n", "0\n-10\n"),
        ],
        [
            "import sys\ndata = sys.stdin.buffer.read().split()\nn, q = int(data[0]), int(data[1])\npre = [0]\nfor x in data[2:2 + n]:\n    pre.append(pre[-1] + int(x))\nout = []\nidx = 2 + n\nfor _ in range(q):\n    l, r = int(data[idx]), int(data[idx + 1])\n    idx += 2\n    out.append(pre[r] - pre[l - 1])\nprint('\\n'.join(map(str, out)))",
            "from itertools import accumulate\nn, q = map(int, input().split())\npre = [0, *accumulate(map(int, input().split()))]\nfor _ in range(q):\n    l, r = map(int, input().split())\n    print(pre[r] - pre[l - 1])",
        ],
        [
            "from itertools import accumulate\nn, q = map(int, input().split())\npre = [0, *accumulate(map(int, input().split()))]\nfor _ in range(q):\n    l, r = map(int, input().split())\n    print(pre[r] - pre[l])",
            "from itertools import accumulate\nn, q = map(int, input().split())\npre = [0, *accumulate(map(int, input().split()))]\nfor _ in range(q):\n    l, r = map(int, input().split())\n    print(pre[r - 1] - pre[l - 1])",
        ],
        n_public=1,
    ),
    _p(
        "balanced_brackets",
        5,
        """
Check whether a string of round brackets is balanced.

Input
One line with a string of 1 to 10^5 characters '(' and ')'.

Output
Print YES if the brackets are balanced and NO otherwise.
""",
        [("(())\n", "YES\n"), ("(()\n", "NO\n"), (")(\n", "NO\n"), ("()()\n", "YES\n"), ("())(()\n", "NO\n")],
        [
            "s = input().strip()\nd = 0\nfor c in s:\n    d += 1 if c == '(' else -1\n    if d < 0:\n        break\nprint('YES' if d == 0 else 'NO')",
            "s = input().strip()\nstack = []\nok = True\nfor c in s:\n    if c == '(':\n        stack.append(c)\n    elif stack:\n        stack.pop()\n    else:\n        ok = False\nprint('YES' if ok and not stack else 'NO')",
        ],
        [
            "s = input().strip()\nprint('YES' if s.count('(') == s.count(')') else 'NO')",
            "s = input().strip()\nd = 0\nfor c in s:\n    d += 1 if c == '(' else -1\nprint('YES' if d == 0 and s[0] == '(' else 'NO')",
        ],
    ),
    _p(
        "gcd_lcm",
        3,
        """
Print the greatest common divisor and the least common multiple of a and b.

Input
One line with two integers a and b (1 <= a, b <= 10^9).

Output
Print gcd(a, b) and lcm(a, b) separated by a space.
""",
        [
            ("4 6\n", "2 12\n"),
            ("7 7\n", "7 7\n"),
            ("1000000000 999999999\n", "1 999999999000000000\n"),
            ("12 18\n", "6 36\n"),
        ],
        [
            "from math import gcd\na, b = map(int, input().split())\ng = gcd(a, b)\nprint(g, a // g * b)",
            "a, b = map(int, input().split())\nx, y = a, b\nwhile y:\n    x, y = y, x % y\nprint(x, a * b // x)",
        ],
        [
            "from math import gcd\na, b = map(int, input().split())\nprint(gcd(a, b), a * b)",
            "from math import gcd\na, b = map(int, input().split())\ng = gcd(a, b)\nprint(f'{g},{a * b // g}')",
        ],
        split="test",
    ),
    _p(
        "count_primes",
        8,
        """
Count the primes not greater than n.

Input
One integer n (1 <= n <= 2 * 10^6).

Output
Print the number of primes p <= n.
""",
        [("10\n", "4\n"), ("1\n", "0\n"), ("2\n", "1\n"), ("100\n", "25\n"), ("2000000\n", "148933\n")],
        [
            "n = int(input())\nif n < 2:\n    print(0)\nelse:\n    s = bytearray([1]) * (n + 1)\n    s[0] = s[1] = 0\n    for i in range(2, int(n ** 0.5) + 1):\n        if s[i]:\n            s[i * i::i] = bytearray(len(range(i * i, n + 1, i)))\n    print(sum(s))",
            "n = int(input())\nsieve = [True] * (n + 1)\ncount = 0\nfor i in range(2, n + 1):\n    if sieve[i]:\n        count += 1\n        for j in range(i * i, n + 1, i):\n            sieve[j] = False\nprint(count)",
        ],
        [
            "n = int(input())\ncount = 0\nfor x in range(2, n + 1):\n    if all(x % d for d in range(2, x)):\n        count += 1\nprint(count)",
            "n = int(input())\nif n < 2:\n    print(0)\nelse:\n    s = bytearray([1]) * n\n    s[0] = s[1] = 0\n    for i in range(2, int(n ** 0.5) + 1):\n        if s[i]:\n            s[i * i::i] = bytearray(len(range(i * i, n, i)))\n    print(sum(s))",
        ],
    ),
    _p(
        "longest_run",
        5,
        """
Find the length of the longest block of equal consecutive characters in a string.

Input
One line with a string of 1 to 10^5 lowercase letters.

Output
Print the length of the longest run.
""",
        [("aabbbc\n", "3\n"), ("abc\n", "1\n"), ("zzzz\n", "4\n"), ("abbcccc\n", "4\n")],
        [
            "s = input().strip()\nbest = cur = 1\nfor i in range(1, len(s)):\n    cur = cur + 1 if s[i] == s[i - 1] else 1\n    best = max(best, cur)\nprint(best)",
            "from itertools import groupby\nprint(max(len(list(g)) for _, g in groupby(input().strip())))",
        ],
        [
            "s = input().strip()\nbest = cur = 1\nfor i in range(1, len(s)):\n    if s[i] == s[i - 1]:\n        cur += 1\n    else:\n        best = max(best, cur)\n        cur = 1\nprint(best)",
            "s = input().strip()\nbest = cur = 0\nfor i in range(1, len(s)):\n    cur = cur + 1 if s[i] == s[i - 1] else 0\n    best = max(best, cur)\nprint(best)",
        ],
    ),
    _p(
        "two_sum_exists",
        7,
        """
Given n integers and a target x, decide whether two elements at different positions sum to x.

Input
The first line contains n and x (2 <= n <= 10^5, |x| <= 10^9), the second n integers (|a_i| <= 10^9).

Output
Print YES or NO.
""",
        [
            ("4 9\n2 7 11 15\n", "YES\n"),
            ("3 10\n5 1 2\n", "NO\n"),
            ("2 10\n5 5\n", "YES\n"),
            ("3 4\n2 1 5\n", "NO\n"),
            ("4 8\n3 1 2 5\n", "YES\n"),
        ],
        [
            "n, x = map(int, input().split())\nseen = set()\nok = False\nfor v in map(int, input().split()):\n    if x - v in seen:\n        ok = True\n    seen.add(v)\nprint('YES' if ok else 'NO')",
            "n, x = map(int, input().split())\na = sorted(map(int, input().split()))\ni, j = 0, n - 1\nok = False\nwhile i < j:\n    s = a[i] + a[j]\n    if s == x:\n        ok = True\n        break\n    if s < x:\n        i += 1\n    else:\n        j -= 1\nprint('YES' if ok else 'NO')",
        ],
        [
            "n, x = map(int, input().split())\na = set(map(int, input().split()))\nprint('YES' if any(x - v in a for v in a) else 'NO')",
            "n, x = map(int, input().split())\na = list(map(int, input().split()))\nprint('YES' if any(a[i] + a[i + 1] == x for i in range(n - 1)) else 'NO')",
        ],
    ),
    _p(
        "binary_representation",
        2,
        """
Print the binary representation of a non-negative integer n without leading zeros.

Input
One integer n (0 <= n <= 10^18).

Output
Print n in base 2.
""",
        [("5\n", "101\n"), ("0\n", "0\n"), ("8\n", "1000\n"), ("1\n", "1\n")],
        [
            "print(bin(int(input()))[2:])",
            "n = int(input())\ns = ''\nwhile n:\n    s = str(n % 2) + s\n    n //= 2\nprint(s or '0')",
        ],
        [
            "print(bin(int(input())))",
            "n = int(input())\ns = ''\nwhile n:\n    s = str(n % 2) + s\n    n //= 2\nprint(s)",
        ],
    ),
    _p(
        "matrix_transpose",
        6,
        """
Transpose an r x c matrix.

Input
The first line contains r and c (1 <= r, c <= 50). Each of the next r lines contains c integers.

Output
Print c lines with r integers each: the transposed matrix.
""",
        [("2 3\n1 2 3\n4 5 6\n", "1 4\n2 5\n3 6\n"), ("1 1\n9\n", "9\n"), ("3 1\n1\n2\n3\n", "1 2 3\n")],
        [
            "r, c = map(int, input().split())\nm = [input().split() for _ in range(r)]\nfor j in range(c):\n    print(' '.join(m[i][j] for i in range(r)))",
            "r, c = map(int, input().split())\nm = [input().split() for _ in range(r)]\nfor row in zip(*m):\n    print(*row)",
        ],
        [
            "r, c = map(int, input().split())\nm = [input().split() for _ in range(r)]\nfor row in m:\n    print(*row)",
            "r, c = map(int, input().split())\nm = [input().split() for _ in range(r)]\nfor j in range(min(r, c)):\n    print(' '.join(m[i][j] for i in range(r)))",
        ],
        split="valid",
    ),
    _p(
        "min_coins",
        10,
        """
Coins have values 1, 5, 10, 25. Find the minimum number of coins that sum to n.

Input
One integer n (0 <= n <= 10^18).

Output
Print the minimum number of coins.
""",
        [("30\n", "2\n"), ("0\n", "0\n"), ("99\n", "9\n"), ("1000000000000000000\n", "40000000000000000\n")],
        [
            "n = int(input())\nc = 0\nfor v in (25, 10, 5, 1):\n    c += n // v\n    n %= v\nprint(c)",
            "n = int(input())\nq, r = divmod(n, 25)\nd, r = divmod(r, 10)\nf, r = divmod(r, 5)\nprint(q + d + f + r)",
        ],
        [
            "n = int(input())\nc = 0\nwhile n > 0:\n    for v in (25, 10, 5, 1):\n        if n >= v:\n            n -= v\n            c += 1\n            break\nprint(c)",
            "n = int(input())\nc = 0\nfor v in (25, 10, 5):\n    c += n // v\n    n %= v\nprint(c)",
        ],
    ),
    _p(
        "digit_sum_repeat",
        7,
        """
Repeatedly replace n by the sum of its digits until it has one digit; print that digit.

Input
One integer n (0 <= n <= 10^100).

Output
Print the resulting digit.
""",
        [("38\n", "2\n"), ("0\n", "0\n"), ("9\n", "9\n"), ("99999\n", "9\n"), ("10\n", "1\n")],
        [
            "s = input().strip()\nwhile len(s) > 1:\n    s = str(sum(map(int, s)))\nprint(s)",
            "n = int(input())\nprint(0 if n == 0 else 1 + (n - 1) % 9)",
        ],
        [
            "n = int(input())\nprint(n % 9)",
            "s = input().strip()\nprint(sum(map(int, s)) % 10)",
        ],
    ),
    _p(
        "unique_sorted",
        1,
        """
Print the distinct values of the array in increasing order.

Input
The first line contains n (1 <= n <= 1000), the second n integers (|a_i| <= 10^9).

Output
Print the distinct values in increasing order, separated by spaces.
""",
        [("5\n3 1 3 2 1\n", "1 2 3\n"), ("1\n5\n", "5\n"), ("4\n-1 -1 -2 10\n", "-2 -1 10\n")],
        [
            "input()\nprint(*sorted(set(map(int, input().split()))))",
            "input()\na = sorted(map(int, input().split()))\nout = [a[0]]\nfor x in a[1:]:\n    if x != out[-1]:\n        out.append(x)\nprint(*out)",
        ],
        [
            "input()\nprint(*sorted(set(input().split())))",
            "input()\nprint(*sorted(set(map(int, input().split())), reverse=True))",
        ],
    ),
    _p(
        "leap_year",
        2,
        """
Decide whether a year is a leap year in the Gregorian calendar.

Input
One integer y (1 <= y <= 10^9).

Output
Print YES for a leap year and NO otherwise.
""",
        [("2000\n", "YES\n"), ("1900\n", "NO\n"), ("2024\n", "YES\n"), ("2023\n", "NO\n")],
        [
            "y = int(input())\nprint('YES' if y % 400 == 0 or (y % 4 == 0 and y % 100 != 0) else 'NO')",
            "import calendar\nprint('YES' if calendar.isleap(int(input())) else 'NO')",
        ],
        [
            "y = int(input())\nprint('YES' if y % 4 == 0 else 'NO')",
            "y = int(input())\nprint('YES' if y % 4 == 0 and y % 100 != 0 else 'NO')",
        ],
        split="valid",
    ),
    _p(
        "kth_smallest",
        6,
        """
Print the k-th smallest element of the array (1-based; equal values count separately).

Input
The first line contains n and k (1 <= k <= n <= 10^5). The second line contains n integers.

Output
Print the k-th smallest element.
""",
        [("5 2\n4 1 3 1 5\n", "1\n"), ("3 3\n7 8 9\n", "9\n"), ("1 1\n-5\n", "-5\n"), ("4 3\n2 2 1 3\n", "2\n")],
        [
            "n, k = map(int, input().split())\nprint(sorted(map(int, input().split()))[k - 1])",
            "import heapq\nn, k = map(int, input().split())\nprint(heapq.nsmallest(k, map(int, input().split()))[-1])",
        ],
        [
            "n, k = map(int, input().split())\nprint(sorted(map(int, input().split()))[k])",
            "n, k = map(int, input().split())\nprint(sorted(set(map(int, input().split())))[k - 1])",
        ],
    ),
    _p(
        "caesar_cipher",
        3,
        """
Shift every lowercase letter of the text forward by k positions in the alphabet (wrapping from
z to a). Other characters are unchanged.

Input
The first line contains k (0 <= k <= 1000). The second line contains the text (1 to 100 characters).

Output
Print the encrypted text.
""",
        [("3\nabc xyz\n", "def abc\n"), ("0\nhello\n", "hello\n"), ("26\nzoo\n", "zoo\n"), ("1\nzz top\n", "aa upq\n")],
        [
            "k = int(input())\ns = input()\nprint(''.join(chr((ord(c) - 97 + k) % 26 + 97) if c.islower() else c for c in s))",
            "import string\nk = int(input()) % 26\na = string.ascii_lowercase\nprint(input().translate(str.maketrans(a, a[k:] + a[:k])))",
        ],
        [
            "k = int(input())\ns = input()\nprint(''.join(chr(ord(c) + k) if c.islower() else c for c in s))",
            "k = int(input())\ns = input()\nprint(''.join(chr((ord(c) - 97 + k) % 26 + 97) for c in s))",
        ],
    ),
    _p(
        "staircase_ways",
        8,
        """
You climb a staircase of n steps, taking 1 or 2 steps at a time. Count the ways modulo 10^9 + 7.

Input
One integer n (1 <= n <= 10^6).

Output
Print the number of ways modulo 1000000007.
""",
        [("2\n", "2\n"), ("3\n", "3\n"), ("1\n", "1\n"), ("10\n", "89\n"), ("1000000\n", "534400663\n")],
        [
            "MOD = 10**9 + 7\nn = int(input())\na, b = 1, 1\nfor _ in range(n - 1):\n    a, b = b, (a + b) % MOD\nprint(b)",
            "MOD = 10**9 + 7\nn = int(input())\nways = [1, 1] + [0] * (n - 1)\nfor i in range(2, n + 1):\n    ways[i] = (ways[i - 1] + ways[i - 2]) % MOD\nprint(ways[n])",
        ],
        [
            "import sys\nsys.setrecursionlimit(10000)\ndef f(n):\n    return 1 if n <= 1 else f(n - 1) + f(n - 2)\nprint(f(int(input())) % (10**9 + 7))",
            "MOD = 10**9 + 7\nn = int(input())\na, b = 1, 1\nfor _ in range(n):\n    a, b = b, (a + b) % MOD\nprint(b)",
        ],
    ),
    _p(
        "anagram_check",
        4,
        """
Decide whether two words are anagrams of each other.

Input
Two lines, each with a word of 1 to 1000 lowercase letters.

Output
Print YES or NO.
""",
        [("listen\nsilent\n", "YES\n"), ("abc\nabd\n", "NO\n"), ("aab\nabb\n", "NO\n"), ("a\na\n", "YES\n")],
        [
            "print('YES' if sorted(input().strip()) == sorted(input().strip()) else 'NO')",
            "from collections import Counter\nprint('YES' if Counter(input().strip()) == Counter(input().strip()) else 'NO')",
        ],
        [
            "print('YES' if set(input().strip()) == set(input().strip()) else 'NO')",
            "a, b = input().strip(), input().strip()\nprint('YES' if len(a) == len(b) and set(a) == set(b) else 'NO')",
        ],
    ),
    _p(
        "max_subarray",
        9,
        """
Find the maximum sum of a non-empty contiguous subarray.

Input
The first line contains n (1 <= n <= 10^5), the second n integers (|a_i| <= 10^9).

Output
Print the maximum subarray sum.
""",
        [
            ("5\n-2 1 -3 4 -1\n", "4\n"),
            ("3\n-5 -2 -9\n", "-2\n"),
            ("4\n1 2 3 4\n", "10\n"),
            ("6\n2 -1 2 -1 2 -9\n", "4\n"),
        ],
        [
            "n = int(input())\nbest = cur = None\nfor x in map(int, input().split()):\n    cur = x if cur is None or cur < 0 else cur + x\n    best = cur if best is None else max(best, cur)\nprint(best)",
            "n = int(input())\na = list(map(int, input().split()))\nbest = a[0]\nlow = 0\npre = 0\nfor x in a:\n    pre += x\n    best = max(best, pre - low)\n    low = min(low, pre)\nprint(best)",
        ],
        [
            "n = int(input())\nbest = cur = 0\nfor x in map(int, input().split()):\n    cur = max(0, cur + x)\n    best = max(best, cur)\nprint(best)",
            "n = int(input())\na = list(map(int, input().split()))\nprint(max(sum(x for x in a if x > 0), max(a)))",
        ],
        split="test",
    ),
    _p(
        "grid_paths",
        11,
        """
Count monotone lattice paths from the top-left to the bottom-right corner of an r x c grid of
cells (moves right or down only), modulo 10^9 + 7.

Input
One line with r and c (1 <= r, c <= 10^5).

Output
Print the number of paths modulo 1000000007.
""",
        [("2 2\n", "2\n"), ("1 5\n", "1\n"), ("3 3\n", "6\n"), ("100000 100000\n", "691090292\n")],
        [
            "MOD = 10**9 + 7\nr, c = map(int, input().split())\nn = r + c - 2\nk = r - 1\nnum = den = 1\nfor i in range(k):\n    num = num * (n - i) % MOD\n    den = den * (i + 1) % MOD\nprint(num * pow(den, MOD - 2, MOD) % MOD)",
            "import math\nr, c = map(int, input().split())\nprint(math.comb(r + c - 2, r - 1) % (10**9 + 7))",
        ],
        [
            "MOD = 10**9 + 7\nr, c = map(int, input().split())\nrow = [1] * c\nfor _ in range(r - 1):\n    for j in range(1, c):\n        row[j] = (row[j] + row[j - 1]) % MOD\nprint(row[-1])",
            "import math\nr, c = map(int, input().split())\nprint(math.comb(r + c, r) % (10**9 + 7))",
        ],
    ),
    _p(
        "run_length_encoding",
        5,
        """
Compress a string by run-length encoding: each maximal run of a character c of length k becomes
c followed by k.

Input
One line with a string of 1 to 1000 lowercase letters.

Output
Print the encoded string.
""",
        [("aaabcc\n", "a3b1c2\n"), ("z\n", "z1\n"), ("abab\n", "a1b1a1b1\n"), ("bbbbbbbbbbbb\n", "b12\n")],
        [
            "from itertools import groupby\nprint(''.join(f'{k}{len(list(g))}' for k, g in groupby(input().strip())))",
            "s = input().strip()\nout = []\ni = 0\nwhile i < len(s):\n    j = i\n    while j < len(s) and s[j] == s[i]:\n        j += 1\n    out.append(s[i] + str(j - i))\n    i = j\nprint(''.join(out))",
        ],
        [
            "from collections import Counter\nprint(''.join(f'{k}{v}' for k, v in Counter(input().strip()).items()))",
            "s = input().strip()\nout = []\ni = 0\nwhile i < len(s):\n    j = i\n    while j < len(s) and s[j] == s[i]:\n        j += 1\n    out.append(s[i] + str(min(j - i, 9)))\n    i = j\nprint(''.join(out))",
        ],
    ),
    _p(
        "closest_pair_1d",
        6,
        """
Given n distinct integers, print the smallest absolute difference between any two of them.

Input
The first line contains n (2 <= n <= 10^5), the second n distinct integers (|a_i| <= 10^9).

Output
Print the minimum difference.
""",
        [
            ("4\n10 1 5 3\n", "2\n"),
            ("2\n-5 5\n", "10\n"),
            ("5\n1 100 50 51 200\n", "1\n"),
            ("4\n1 10 2 20\n", "1\n"),
            ("3\n1 10 11\n", "1\n"),
        ],
        [
            "n = int(input())\na = sorted(map(int, input().split()))\nprint(min(a[i + 1] - a[i] for i in range(n - 1)))",
            "n = int(input())\na = sorted(map(int, input().split()))\nprint(min(y - x for x, y in zip(a, a[1:])))",
        ],
        [
            "n = int(input())\na = list(map(int, input().split()))\nprint(min(abs(a[i + 1] - a[i]) for i in range(n - 1)))",
            "n = int(input())\na = sorted(map(int, input().split()))\nprint(min(a[i + 1] - a[i] for i in range(n - 2)) if n > 2 else a[1] - a[0])",
        ],
        split="valid",
    ),
    _p(
        "power_mod",
        10,
        """
Compute a^b mod m.

Input
One line with a, b, m (0 <= a, b <= 10^18, 1 <= m <= 10^9).

Output
Print a^b mod m.
""",
        [
            ("2 10 1000\n", "24\n"),
            ("5 0 7\n", "1\n"),
            ("3 1000000000000000000 1000000007\n", "246336683\n"),
            ("7 3 1\n", "0\n"),
            ("5 0 1\n", "0\n"),
        ],
        [
            "a, b, m = map(int, input().split())\nprint(pow(a, b, m))",
            "a, b, m = map(int, input().split())\nr = 1 % m\na %= m\nwhile b:\n    if b & 1:\n        r = r * a % m\n    a = a * a % m\n    b >>= 1\nprint(r)",
        ],
        [
            "a, b, m = map(int, input().split())\nr = 1\nfor _ in range(b):\n    r = r * a % m\nprint(r)",
            "a, b, m = map(int, input().split())\nr = 1\na %= m\nwhile b:\n    if b & 1:\n        r = r * a % m\n    a = a * a % m\n    b >>= 1\nprint(r)",
        ],
        split="test",
    ),
    _p(
        "word_frequency",
        7,
        """
Print the most frequent word of a text; on a tie print the lexicographically smallest one.

Input
One line with 1 to 1000 lowercase words separated by spaces.

Output
Print the word and its count separated by a space.
""",
        [("b a b a c\n", "a 2\n"), ("x\n", "x 1\n"), ("dog cat dog\n", "dog 2\n"), ("z y x\n", "x 1\n")],
        [
            "from collections import Counter\nc = Counter(input().split())\nw = min(c, key=lambda k: (-c[k], k))\nprint(w, c[w])",
            "d = {}\nfor w in input().split():\n    d[w] = d.get(w, 0) + 1\nbest = sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[0]\nprint(*best)",
        ],
        [
            "from collections import Counter\nw, n = Counter(input().split()).most_common(1)[0]\nprint(w, n)",
            "from collections import Counter\nc = Counter(input().split())\nw = min(c, key=lambda k: (-c[k], k))\nprint(w)",
        ],
    ),
    _p(
        "triangle_type",
        3,
        """
Given three side lengths, print "none" if they do not form a non-degenerate triangle, otherwise
"equilateral", "isosceles" or "scalene".

Input
One line with three integers (1 <= a, b, c <= 10^9).

Output
Print the triangle type.
""",
        [
            ("3 3 3\n", "equilateral\n"),
            ("3 4 5\n", "scalene\n"),
            ("1 2 3\n", "none\n"),
            ("5 5 8\n", "isosceles\n"),
            ("1 1 5\n", "none\n"),
            ("5 1 1\n", "none\n"),
        ],
        [
            "a, b, c = sorted(map(int, input().split()))\nif a + b <= c:\n    print('none')\nelif a == c:\n    print('equilateral')\nelif a == b or b == c:\n    print('isosceles')\nelse:\n    print('scalene')",
            "s = sorted(map(int, input().split()))\nk = len(set(s))\nprint('none' if s[0] + s[1] <= s[2] else ['', 'equilateral', 'isosceles', 'scalene'][k])",
        ],
        [
            "a, b, c = sorted(map(int, input().split()))\nif a + b < c:\n    print('none')\nelif a == c:\n    print('equilateral')\nelif a == b or b == c:\n    print('isosceles')\nelse:\n    print('scalene')",
            "a, b, c = map(int, input().split())\nif a + b <= c:\n    print('none')\nelif a == b == c:\n    print('equilateral')\nelif a == b or b == c or a == c:\n    print('isosceles')\nelse:\n    print('scalene')",
        ],
    ),
]


def to_raw(p: Problem) -> dict:
    """One problem in the Hugging Face `deepmind/code_contests` schema (all fields present)."""

    def tests(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
        return {"input": [i for i, _ in pairs], "output": [o for _, o in pairs]}

    return {
        "name": p.name,
        "description": p.description,
        "public_tests": tests(p.tests[: p.n_public]),
        "private_tests": tests(p.tests[p.n_public :]),
        "generated_tests": tests([]),
        "source": p.source,
        "difficulty": p.difficulty,
        "solutions": {"language": [3] * len(p.correct), "solution": list(p.correct)},
        "incorrect_solutions": {"language": [3] * len(p.incorrect), "solution": list(p.incorrect)},
        "cf_contest_id": 0,
        "cf_index": "",
        "cf_points": 0.0,
        "cf_rating": p.cf_rating,
        "cf_tags": list(p.tags),
        "is_description_translated": False,
        "untranslated_description": "",
        "time_limit": {"seconds": 2, "nanos": 0},
        "memory_limit_bytes": 256_000_000,
        "input_file": "",
        "output_file": "",
    }


def write_raw_splits(dst: str | Path) -> dict[str, Path]:
    """Write `{train,valid,test}.jsonl` in the raw schema under `dst`; returns the paths."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("train", "valid", "test"):
        paths[split] = dst / f"{split}.jsonl"
        with open(paths[split], "w", encoding="utf-8") as f:
            for p in PROBLEMS:
                if p.split == split:
                    f.write(json.dumps(to_raw(p)) + "\n")
    return paths


def corpus_text() -> str:
    """Statements, solutions and the Alpaca template as plain text (to train the micro model's own
    tokenizer on everything it will see)."""
    from wmtp_lightning.data.template import PROMPT_NO_INPUT, PROMPT_WITH_INPUT

    parts = [PROMPT_WITH_INPUT, PROMPT_NO_INPUT]
    for p in PROBLEMS:
        parts.append(p.description)
        parts.extend(p.correct + p.incorrect)
    return "\n".join(parts)
