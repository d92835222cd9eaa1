# The fuzzer's crash: a float division whose result is infinite made hcl-rs
# panic (a debug assertion); integer overflow and a remainder by zero too.
locals {
  a = 1.5 / 0
  b = 1e300 * 1e300 / 0.5
  c = 9223372036854775807 * 9223372036854775807
  d = 7 % 0
  e = "${-9223372036854775807 - 9223372036854775807 - 9}"
  f = [for n in [0] : n / n]
}
