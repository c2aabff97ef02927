"""Hand-written English vocabulary of the simulated marketplace.

Each topic is a product family: its words make a title read like the family, so a generic
text encoder places items of one topic together. Brands are invented names: their meaning
(which user community buys them) is only visible in behavior.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    department: str
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    materials: tuple[str, ...]
    uses: tuple[str, ...]


# Topic t and t + 12 are related: with 12 categories they share one (e.g. "Coffee & Tea").
TOPICS: tuple[Topic, ...] = (
    Topic("Outdoor", ("hiking boots", "trail backpack", "camping tent", "trekking poles", "sleeping bag", "rain jacket", "headlamp", "water filter"),
          ("waterproof", "lightweight", "rugged", "insulated", "packable", "breathable", "all-season", "trail-ready"),
          ("nylon", "Gore-Tex", "ripstop", "merino", "aluminium", "down"), ("long hikes", "weekend camping", "mountain trails", "wet weather")),
    Topic("Kitchen", ("chef knife", "frying pan", "cutting board", "stock pot", "spice rack", "knife set", "saucepan", "mixing bowls"),
          ("non-stick", "razor-sharp", "heavy-duty", "dishwasher-safe", "professional", "ergonomic", "stackable", "oven-safe"),
          ("stainless steel", "cast iron", "bamboo", "carbon steel", "ceramic", "copper"), ("everyday cooking", "meal prep", "family dinners", "searing and sauteing")),
    Topic("Coffee", ("espresso machine", "coffee grinder", "pour-over kettle", "french press", "milk frother", "coffee beans", "travel mug", "cold brew maker"),
          ("barista-grade", "single-origin", "programmable", "gooseneck", "double-walled", "dark roast", "burr", "insulated"),
          ("stainless steel", "borosilicate glass", "ceramic", "copper", "arabica", "enamel"), ("morning espresso", "slow brewing", "coffee on the go", "latte art")),
    Topic("Running", ("running shoes", "running shorts", "sports watch", "hydration vest", "compression socks", "running tights", "sweatband", "race belt"),
          ("cushioned", "lightweight", "reflective", "moisture-wicking", "responsive", "seamless", "GPS", "high-visibility"),
          ("mesh", "polyester", "spandex", "foam", "silicone", "recycled nylon"), ("marathon training", "daily runs", "trail running", "interval sessions")),
    Topic("Skincare", ("face serum", "moisturizer", "cleansing gel", "sunscreen", "eye cream", "clay mask", "night cream", "toner"),
          ("hydrating", "fragrance-free", "brightening", "gentle", "anti-aging", "oil-free", "soothing", "SPF 50"),
          ("hyaluronic acid", "vitamin C", "aloe vera", "niacinamide", "shea butter", "green tea"), ("sensitive skin", "daily routine", "dry skin", "oily skin")),
    Topic("Gaming", ("gaming mouse", "mechanical keyboard", "gaming headset", "controller", "mouse pad", "gaming chair", "capture card", "streaming microphone"),
          ("RGB", "wireless", "low-latency", "ergonomic", "tournament-grade", "programmable", "surround-sound", "hot-swappable"),
          ("aluminium", "PBT keycaps", "memory foam", "braided cable", "matte plastic", "leatherette"), ("competitive play", "late-night gaming", "streaming", "esports")),
    Topic("Baby", ("baby stroller", "diaper bag", "baby monitor", "high chair", "swaddle blanket", "teething toy", "car seat", "baby carrier"),
          ("foldable", "BPA-free", "soft-touch", "convertible", "washable", "hypoallergenic", "compact", "adjustable"),
          ("organic cotton", "muslin", "food-grade silicone", "bamboo fiber", "recycled polyester", "natural rubber"), ("newborns", "toddlers", "travel with baby", "night feeds")),
    Topic("Garden", ("garden hose", "pruning shears", "raised bed", "watering can", "seed starter kit", "compost bin", "garden gloves", "lawn sprinkler"),
          ("weatherproof", "expandable", "heavy-duty", "rust-resistant", "self-watering", "kink-free", "ergonomic", "UV-stable"),
          ("galvanized steel", "cedar wood", "recycled plastic", "brass", "rubber", "terracotta"), ("vegetable gardens", "balcony plants", "lawn care", "spring planting")),
    Topic("Audio", ("wireless earbuds", "bookshelf speakers", "turntable", "studio headphones", "soundbar", "portable speaker", "DAC amplifier", "noise-cancelling headphones"),
          ("hi-fi", "noise-cancelling", "bluetooth", "waterproof", "high-resolution", "bass-boosted", "audiophile", "compact"),
          ("walnut", "aluminium", "memory foam", "graphene", "fabric mesh", "bamboo"), ("vinyl listening", "commutes", "home theater", "studio mixing")),
    Topic("Pets", ("dog bed", "cat tree", "dog leash", "pet carrier", "chew toy", "litter box", "pet fountain", "grooming brush"),
          ("orthopedic", "chew-proof", "washable", "reflective", "self-cleaning", "calming", "escape-proof", "travel-friendly"),
          ("memory foam", "sisal rope", "natural rubber", "nylon webbing", "stainless steel", "fleece"), ("large dogs", "indoor cats", "puppies", "senior pets")),
    Topic("Books", ("mystery novel", "cookbook", "fantasy trilogy", "travel guide", "biography", "poetry collection", "graphic novel", "science book"),
          ("bestselling", "illustrated", "award-winning", "hardcover", "paperback", "annotated", "collector's edition", "pocket-size"),
          ("hardcover", "paperback", "cloth-bound", "large print", "gift edition", "box set"), ("rainy weekends", "book clubs", "long flights", "bedtime reading")),
    Topic("Office", ("standing desk", "office chair", "monitor arm", "desk lamp", "notebook", "fountain pen", "desk organizer", "laptop stand"),
          ("ergonomic", "height-adjustable", "minimalist", "dimmable", "refillable", "cable-managed", "premium", "foldable"),
          ("oak veneer", "aluminium", "mesh", "recycled paper", "leather", "brass"), ("home office", "long workdays", "note taking", "focused work")),
    Topic("Cycling", ("road bike helmet", "bike lights", "cycling jersey", "bike lock", "saddle bag", "bike pump", "cycling gloves", "bike computer"),
          ("aero", "USB-rechargeable", "padded", "anti-theft", "lightweight", "reflective", "ventilated", "tubeless-ready"),
          ("carbon fiber", "hardened steel", "lycra", "aluminium", "gel", "polycarbonate"), ("commuting", "road cycling", "mountain biking", "night rides")),
    Topic("Home Decor", ("throw pillow", "table lamp", "wall art", "scented candle", "area rug", "vase", "mirror", "blanket throw"),
          ("handwoven", "boho", "mid-century", "cozy", "hand-poured", "minimalist", "vintage-inspired", "textured"),
          ("linen", "soy wax", "jute", "velvet", "ceramic", "rattan"), ("living rooms", "bedroom makeovers", "gifting", "cozy evenings")),
    Topic("Tea", ("loose leaf tea", "teapot", "tea infuser", "matcha whisk", "herbal tea sampler", "tea tin", "chai blend", "tea cups"),
          ("organic", "caffeine-free", "ceremonial-grade", "hand-picked", "floral", "smoky", "double-walled", "cast"),
          ("green tea", "black tea", "oolong", "porcelain", "cast iron", "bamboo"), ("afternoon tea", "relaxing evenings", "tea ceremonies", "gifting")),
    Topic("Fitness", ("yoga mat", "adjustable dumbbells", "resistance bands", "kettlebell", "foam roller", "pull-up bar", "jump rope", "exercise bike"),
          ("non-slip", "adjustable", "space-saving", "extra-thick", "heavy-duty", "portable", "quiet", "foldable"),
          ("cast iron", "natural rubber", "TPE foam", "neoprene", "steel", "cork"), ("home workouts", "strength training", "yoga practice", "recovery days")),
    Topic("Tools", ("cordless drill", "socket set", "tape measure", "tool bag", "stud finder", "impact driver", "work light", "multimeter"),
          ("cordless", "brushless", "heavy-duty", "magnetic", "compact", "professional", "LED", "impact-rated"),
          ("chrome vanadium", "hardened steel", "fiberglass", "ballistic nylon", "lithium-ion", "rubberized"), ("DIY projects", "home repairs", "woodworking", "job sites")),
    Topic("Jewelry", ("pendant necklace", "stud earrings", "charm bracelet", "signet ring", "hoop earrings", "anklet", "cufflinks", "watch strap"),
          ("handcrafted", "hypoallergenic", "minimalist", "engraved", "dainty", "statement", "tarnish-free", "adjustable"),
          ("sterling silver", "14k gold", "rose gold", "freshwater pearl", "titanium", "leather"), ("everyday wear", "anniversaries", "weddings", "gifting")),
    Topic("Travel", ("carry-on suitcase", "packing cubes", "travel pillow", "passport wallet", "toiletry bag", "luggage tag", "travel adapter", "duffel bag"),
          ("hard-shell", "expandable", "TSA-approved", "RFID-blocking", "compressible", "water-resistant", "spinner", "lightweight"),
          ("polycarbonate", "ballistic nylon", "vegan leather", "memory foam", "canvas", "aluminium"), ("business trips", "long-haul flights", "weekend getaways", "backpacking")),
    Topic("Photography", ("camera lens", "tripod", "camera bag", "ring light", "memory card", "camera strap", "lens filter", "gimbal stabilizer"),
          ("wide-angle", "weather-sealed", "carbon", "high-speed", "portable", "fast-aperture", "dimmable", "three-axis"),
          ("carbon fiber", "magnesium alloy", "canvas", "optical glass", "aluminium", "leather"), ("travel photography", "portraits", "vlogging", "landscapes")),
)

# Price buckets from cheapest to dearest; a brand's tier picks around which one its items sit.
PRICE_BUCKETS: tuple[str, ...] = ("budget", "mid", "premium", "luxury")

# Brand names are invented from syllables: they mean nothing to a pretrained text model.
BRAND_HEADS: tuple[str, ...] = (
    "Nor", "Vel", "Tra", "Kal", "Bri", "Zen", "Oro", "Lum", "Fen", "Gal", "Hax", "Ivo", "Jor", "Kev", "Lyr",
    "Mab", "Nex", "Ost", "Pra", "Quo", "Rav", "Sol", "Tor", "Ulv", "Var", "Wen", "Xan", "Yor", "Zal", "Ast",
    "Bel", "Cor", "Dun", "Eld", "Fal", "Gry", "Hol", "Isk", "Jun", "Kor", "Lin", "Mor", "Nym", "Pel", "Rho",
)
BRAND_MIDDLES: tuple[str, ...] = ("", "a", "e", "i", "o", "u", "ar", "en", "il", "or", "ys")
BRAND_TAILS: tuple[str, ...] = (
    "vik", "ton", "ara", "ion", "ex", "ly", "mont", "den", "ford", "ix", "wave", "peak", "stone", "field", "gate",
    "line", "craft", "works", "ridge", "haven", "wood", "light", "berg", "holm", "ora", "tek", "ia", "co", "ro", "sa",
)

DESCRIPTION_TEMPLATES: tuple[str, ...] = (
    "{Adj} {noun} made from {material}, designed for {use}.",
    "{A_adj} {noun} in {material} for {use}.",
    "Our {adj} {noun}: {material} build, made for {use}.",
    "{Adj} and made to last, this {material} {noun} is ideal for {use}.",
)
