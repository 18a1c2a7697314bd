-- Reproducible randomness for sweeps: a seeded generator (xoshiro256**), keyed
-- permutations of 0..n-1 in constant memory, Sobol and Latin hypercube points,
-- and the normal distribution's inverse CDF.  Everything here is a pure
-- function of (seed, index), so any trial's point can be recomputed alone and a
-- sweep grows (n = 100 -> 200) without changing the trials it already has.
local M = {}

local log, sqrt, abs = math.log, math.sqrt, math.abs
local maxinteger = math.maxinteger

-- SplitMix64: a fast 64-bit mixer, used to derive independent seeds.
local function splitmix(x)
  local z = x + 0x9e3779b97f4a7c15
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end
M.mix = splitmix

--- A seed given by the user (integer, float or string) as a 64-bit integer.
function M.seed_value(seed, what)
  if seed == nil then return 0 end
  local ts = type(seed)
  if ts == "number" then
    local i = math.tointeger(seed)
    if i then return i end
    return splitmix(string.unpack("<i8", string.pack("<d", seed)))
  elseif ts == "string" then
    local h = 0x5eed
    for i = 1, #seed do h = splitmix(h ~ seed:byte(i)) end
    return h
  end
  error(("%s: 'seed' must be a number or a string, got %s"):format(what or "sweep", ts), 3)
end

--- Derives one seed from a seed and any number of integers (stream, index...).
function M.derive(seed, ...)
  local h = splitmix(seed)
  for i = 1, select("#", ...) do h = splitmix(h ~ select(i, ...)) end
  return h
end

local Generator = {}
Generator.__index = Generator
Generator.__name = "batchai.sweep.Generator"

--- A xoshiro256** generator seeded from a 64-bit integer.
function M.generator(seed)
  local s0 = splitmix(seed)
  local s1 = splitmix(s0)
  local s2 = splitmix(s1)
  local s3 = splitmix(s2)
  if s0 | s1 | s2 | s3 == 0 then s0 = 1 end
  return setmetatable({ s0, s1, s2, s3 }, Generator)
end

--- The next 64 random bits as an integer.
function Generator:bits()
  local s0, s1, s2, s3 = self[1], self[2], self[3], self[4]
  local r = s1 * 5
  r = ((r << 7) | (r >> 57)) * 9
  local t = s1 << 17
  s2 = s2 ~ s0
  s3 = s3 ~ s1
  s1 = s1 ~ s2
  s0 = s0 ~ s3
  s2 = s2 ~ t
  s3 = (s3 << 45) | (s3 >> 19)
  self[1], self[2], self[3], self[4] = s0, s1, s2, s3
  return r
end

--- A float uniformly distributed in [0, 1), with 53 random bits.
function Generator:float()
  return (self:bits() >> 11) * 0x1p-53
end

--- An integer uniformly distributed in [0, n), without modulo bias.
function Generator:below(n)
  local reject = (maxinteger % n + 1) % n
  while true do
    local x = self:bits() >> 1
    if x <= maxinteger - reject then return x % n end
  end
end

-- ---- keyed permutation ----------------------------------------------------

--- A bijection of [0, n) chosen by `key`: a 4-round Feistel network on the
-- smallest even number of bits covering n, cycle-walking values >= n back
-- into range.  Constant memory; each call costs a few mixes on average.
function M.permutation(n, key)
  if n <= 1 then return function(i) return i end end
  local bits = 2
  while (1 << bits) < n and bits < 62 do bits = bits + 2 end
  local half = bits // 2
  local mask = (1 << half) - 1
  local k1, k2, k3, k4 = M.derive(key, 1), M.derive(key, 2), M.derive(key, 3), M.derive(key, 4)
  local function round(x)
    local l, r = x >> half, x & mask
    l, r = r, l ~ (splitmix(r ~ k1) & mask)
    l, r = r, l ~ (splitmix(r ~ k2) & mask)
    l, r = r, l ~ (splitmix(r ~ k3) & mask)
    l, r = r, l ~ (splitmix(r ~ k4) & mask)
    return (l << half) | r
  end
  return function(i)
    local x = round(i)
    while x >= n do x = round(x) end
    return x
  end
end

-- ---- Sobol sequence -------------------------------------------------------

-- Joe and Kuo's direction numbers (new-joe-kuo-6.21201), dimensions 2 to 32,
-- one row each as { s, a, m_1 ... m_s }.  Dimension 1 needs none.
local JOE_KUO = {
  { 1, 0, 1 }, { 2, 1, 1, 3 }, { 3, 1, 1, 3, 1 }, { 3, 2, 1, 1, 1 }, { 4, 1, 1, 1, 3, 3 },
  { 4, 4, 1, 3, 5, 13 }, { 5, 2, 1, 1, 5, 5, 17 }, { 5, 4, 1, 1, 5, 5, 5 }, { 5, 7, 1, 1, 7, 11, 19 },
  { 5, 11, 1, 1, 5, 1, 1 }, { 5, 13, 1, 1, 1, 3, 11 }, { 5, 14, 1, 3, 5, 5, 31 },
  { 6, 1, 1, 3, 3, 9, 7, 49 }, { 6, 13, 1, 1, 1, 15, 21, 21 }, { 6, 16, 1, 3, 1, 13, 27, 49 },
  { 6, 19, 1, 1, 1, 15, 7, 5 }, { 6, 22, 1, 3, 1, 15, 13, 25 }, { 6, 25, 1, 1, 5, 5, 19, 61 },
  { 7, 1, 1, 3, 7, 11, 23, 15, 103 }, { 7, 4, 1, 3, 7, 13, 13, 15, 69 }, { 7, 7, 1, 1, 3, 13, 7, 35, 63 },
  { 7, 8, 1, 3, 5, 9, 1, 25, 53 }, { 7, 14, 1, 3, 1, 13, 9, 35, 107 }, { 7, 19, 1, 3, 1, 5, 27, 61, 31 },
  { 7, 21, 1, 1, 5, 11, 19, 41, 61 }, { 7, 28, 1, 3, 5, 3, 3, 13, 69 }, { 7, 31, 1, 1, 7, 13, 1, 19, 1 },
  { 7, 32, 1, 3, 7, 5, 13, 19, 59 }, { 7, 37, 1, 1, 3, 9, 25, 29, 41 }, { 7, 41, 1, 3, 5, 13, 23, 1, 55 },
  { 7, 42, 1, 3, 7, 3, 13, 59, 17 },
}
M.SOBOL_MAX_DIMS = #JOE_KUO + 1
local SOBOL_BITS = 32

local directions = {}  -- dimension -> array of SOBOL_BITS direction integers

local function sobol_directions(d)
  local v = directions[d]
  if v then return v end
  v = {}
  if d == 1 then
    for i = 1, SOBOL_BITS do v[i] = 1 << (SOBOL_BITS - i) end
  else
    local row = JOE_KUO[d - 1]
    local s, a = row[1], row[2]
    for i = 1, math.min(s, SOBOL_BITS) do v[i] = row[2 + i] << (SOBOL_BITS - i) end
    for i = s + 1, SOBOL_BITS do
      local x = v[i - s] ~ (v[i - s] >> s)
      for k = 1, s - 1 do
        if (a >> (s - 1 - k)) & 1 == 1 then x = x ~ v[i - k] end
      end
      v[i] = x
    end
  end
  directions[d] = v
  return v
end

--- Fills u[1 .. dims] with Sobol point `index` (0-based) in [0, 1)^dims, each
-- coordinate XORed with shifts[d] when given (a random digital shift, which
-- keeps the sequence's stratification).  Direction v[i] belongs to bit i of the
-- index's Gray code (i = 1 the lowest), so any index is computed directly.
function M.sobol(index, dims, u, shifts)
  if dims > M.SOBOL_MAX_DIMS then
    error(("sobol supports up to %d dimensions, the space needs %d"):format(M.SOBOL_MAX_DIMS, dims), 2)
  end
  if index < 0 or index >= (1 << SOBOL_BITS) then error("sobol: index out of range (0 .. 2^32-1)", 2) end
  local gray = index ~ (index >> 1)
  for d = 1, dims do
    local v = sobol_directions(d)
    local x, g, i = 0, gray, 1
    while g ~= 0 do
      if g & 1 == 1 then x = x ~ v[i] end
      g = g >> 1
      i = i + 1
    end
    if shifts then x = x ~ shifts[d] end
    u[d] = x * 0x1p-32
  end
  return u
end

--- Random digital shifts (one 32-bit integer per dimension) derived from a seed.
function M.sobol_shifts(seed, dims)
  local shifts = {}
  for d = 1, dims do shifts[d] = M.derive(seed, 0x50b0, d) & 0xffffffff end
  return shifts
end

-- ---- inverse normal CDF ---------------------------------------------------

--- The standard normal quantile of p in (0, 1): Wichura's algorithm AS241
-- (PPND16), accurate to about 1e-16.
function M.normal_quantile(p)
  local q = p - 0.5
  if abs(q) <= 0.425 then
    local r = 0.180625 - q * q
    local num = (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r
      + 6.7265770927008700853e+4) * r + 4.5921953931549871457e+4) * r
      + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r
      + 1.3314166789178437745e+2) * r + 3.3871328727963666080e+0) * q
    local den = (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r
      + 3.9307895800092710610e+4) * r + 2.1213794301586595867e+4) * r
      + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r
      + 4.2313330701600911252e+1) * r + 1.0)
    return num / den
  end
  local r = q < 0 and p or 1.0 - p
  r = sqrt(-log(r))
  local num, den
  if r <= 5.0 then
    r = r - 1.6
    num = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
      + 2.41780725177450611770e-1) * r + 1.27045825245236838258e+0) * r
      + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r
      + 4.63033784615654529590e+0) * r + 1.42343711074968357734e+0)
    den = (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
      + 1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r
      + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r
      + 2.05319162663775882187e+0) * r + 1.0)
  else
    r = r - 5.0
    num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
      + 1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r
      + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r
      + 5.46378491116411436990e+0) * r + 6.65790464350110377720e+0)
    den = (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
      + 1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r
      + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
      + 5.99832206555887937690e-1) * r + 1.0)
  end
  local x = num / den
  if q < 0 then x = -x end
  return x
end

return M
