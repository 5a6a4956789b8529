import asyncio

async def bystander():
    try:
        await asyncio.sleep(0.050)
        print("bystander: woke")
    finally:
        print("bystander: finally")

async def main():
    b = asyncio.create_task(bystander())
    await asyncio.sleep(0.010)
    print("main: raising")
    raise Exception("main failed")

asyncio.run(main())
