//! Offers: the offer model, the offers file (pricing.yaml) and the route matcher.
