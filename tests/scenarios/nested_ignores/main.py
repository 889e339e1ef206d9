# print("main")
