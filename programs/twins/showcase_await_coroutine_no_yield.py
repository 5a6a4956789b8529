import asyncio

async def inner(name):
    print(name, "inner")
    return name

async def outer(name):
    print(name, "start")
    await inner(name + "1")
    await inner(name + "2")
    print(name, "end")

async def main():
    a = asyncio.create_task(outer("A"))
    b = asyncio.create_task(outer("B"))
    await a
    await b

asyncio.run(main())
