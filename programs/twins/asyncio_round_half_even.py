print(round(2.5), round(3.5), round(-2.5), round(0.5))
print(round(0.125, 2), round(2.675, 2), round(0.375, 2))
print(round(5, 2), round(1250, -2), round(1350, -2))
print(round(1234.5, -2), round(-0.1, 0))
