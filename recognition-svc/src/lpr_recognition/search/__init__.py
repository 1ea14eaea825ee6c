"""Historical search of reads for a case (IACP C.8), with FOUO marking (IACP D)."""
