"""Personal data (PIPL): erasure by crypto-shredding, subject access reports, correction requests, retention."""
