"""receipt_number reads which message a RECEIPT answers, for the scripts
that ask a receipt "r-N" for message N: None for any other receipt, such
as the one stomp.py asks for its DISCONNECT, a uuid, whose second group
("8d1f6c2e-6594-...") was read as message 6594 when all digits."""


def receipt_number(frame):
    rid = frame.headers["receipt-id"]
    return int(rid[2:]) if rid.startswith("r-") else None
