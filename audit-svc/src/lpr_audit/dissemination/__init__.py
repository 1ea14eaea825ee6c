"""The dissemination log (IACP D.1): what left the agency, to whom, why."""
