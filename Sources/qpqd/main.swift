print("qpqd")
